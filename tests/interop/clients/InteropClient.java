// The interop scenario (see scenario.py) with the RabbitMQ Java client.
// Usage: java -cp amqp-client.jar:. InteropClient SCENARIO HOST PORT USER PASSWORD

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.AuthenticationFailureException;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.LongString;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

public class InteropClient {
    static final String CONTENT_TYPE = "application/x-amqpcodec-interop";
    static final int[] SIZES = {0, 10, 5000, 300000};
    static final int IDLE_SECONDS = 7;

    static class Mismatch extends Exception {
        Mismatch(String message) { super(message); }
    }

    static byte[] body(int n) {
        byte[] b = new byte[SIZES[n]];
        for (int i = 0; i < b.length; i++) b[i] = (byte) ((i * 31 + n) % 251);
        return b;
    }

    static Map<String, Object> headers(int n) {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("k", "v");
        inner.put("x", 1);
        Map<String, Object> h = new LinkedHashMap<>();
        h.put("s", "amqpcodec");
        h.put("n", n);
        h.put("b", true);
        h.put("t", inner);
        h.put("a", Arrays.asList(1, "two"));
        return h;
    }

    /** One form for comparing: LongString → String, integral numbers → Long, arrays → lists. */
    static Object normalise(Object v) {
        if (v instanceof LongString) return v.toString();
        if (v instanceof Byte || v instanceof Short || v instanceof Integer || v instanceof Long) {
            return ((Number) v).longValue();
        }
        if (v instanceof byte[]) return "bytes:" + Arrays.toString((byte[]) v);
        if (v instanceof Object[]) v = Arrays.asList((Object[]) v);
        if (v instanceof List) {
            List<Object> out = new ArrayList<>();
            for (Object o : (List<?>) v) out.add(normalise(o));
            return out;
        }
        if (v instanceof Map) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) out.put(e.getKey().toString(), normalise(e.getValue()));
            return out;
        }
        return v;
    }

    static AMQP.BasicProperties properties(int n) {
        return new AMQP.BasicProperties.Builder()
                .contentType(CONTENT_TYPE).deliveryMode(2).headers(headers(n)).build();
    }

    static class Delivery {
        final Envelope envelope;
        final AMQP.BasicProperties properties;
        final byte[] body;
        Delivery(Envelope e, AMQP.BasicProperties p, byte[] b) { envelope = e; properties = p; body = b; }
    }

    static void check(int n, Delivery d) throws Mismatch {
        if (!Arrays.equals(d.body, body(n))) {
            throw new Mismatch("message " + n + ": body of " + d.body.length + " bytes, expected " + SIZES[n]);
        }
        if (!CONTENT_TYPE.equals(d.properties.getContentType())) {
            throw new Mismatch("message " + n + ": content_type " + d.properties.getContentType());
        }
        if (!Integer.valueOf(2).equals(d.properties.getDeliveryMode())) {
            throw new Mismatch("message " + n + ": delivery_mode " + d.properties.getDeliveryMode());
        }
        Object got = normalise(d.properties.getHeaders());
        if (!normalise(headers(n)).equals(got)) throw new Mismatch("message " + n + ": headers " + got);
    }

    static void basic(Connection conn, boolean consumeFirst) throws Exception {
        Channel ch = conn.createChannel();
        String queue = ch.queueDeclare().getQueue(); // server-named, exclusive, auto-delete
        ch.confirmSelect();
        LinkedBlockingQueue<Delivery> received = new LinkedBlockingQueue<>();
        DefaultConsumer consumer = new DefaultConsumer(ch) {
            @Override
            public void handleDelivery(String tag, Envelope envelope, AMQP.BasicProperties props, byte[] body) {
                received.add(new Delivery(envelope, props, body));
            }
        };
        if (consumeFirst) ch.basicConsume(queue, false, consumer); // consume while waiting for confirms
        for (int n = 0; n < SIZES.length; n++) ch.basicPublish("", queue, true, properties(n), body(n));
        ch.waitForConfirmsOrDie(30000);
        if (!consumeFirst) ch.basicConsume(queue, false, consumer);
        for (int n = 0; n < SIZES.length; n++) {
            Delivery d = received.poll(30, TimeUnit.SECONDS);
            if (d == null) throw new Mismatch(n + " of " + SIZES.length + " messages came back");
            check(n, d);
            ch.basicAck(d.envelope.getDeliveryTag(), false);
        }
        ch.close();
    }

    static void tables(Connection conn) throws Exception {
        Map<String, Object> table = new LinkedHashMap<>();
        table.put("longstr", "text");
        table.put("bytes", new byte[] {0, (byte) 255});
        table.put("byte", (byte) -5);
        table.put("short", (short) -300);
        table.put("int", -70000);
        table.put("long", 1L << 40);
        table.put("float", 1.5f);
        table.put("double", 2.5d);
        table.put("decimal", new BigDecimal("3.14"));
        table.put("timestamp", new Date(1704164645000L));
        table.put("bool", false);
        table.put("void", null);
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("deep", 1);
        table.put("table", inner);
        table.put("array", Arrays.asList(1, "two", true, null, Arrays.asList(3)));
        table.put("objects", new Object[] {2, "three"});
        Channel ch = conn.createChannel();
        String queue = ch.queueDeclare().getQueue();
        ch.basicPublish("", queue, new AMQP.BasicProperties.Builder().headers(table).build(), new byte[] {'t'});
        com.rabbitmq.client.GetResponse got = null;
        for (int i = 0; i < 100 && got == null; i++) {
            got = ch.basicGet(queue, true);
            if (got == null) Thread.sleep(50);
        }
        if (got == null) throw new Mismatch("the message did not come back");
        Object back = normalise(got.getProps().getHeaders());
        if (!normalise(table).equals(back)) throw new Mismatch("table came back as " + back + ", sent " + normalise(table));
        ch.close();
    }

    static Connection connect(String host, int port, String user, String password, int heartbeat) throws Exception {
        return connect(host, port, user, password, heartbeat, 131072);
    }

    static Connection connect(String host, int port, String user, String password, int heartbeat, int frameMax)
            throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setHost(host);
        factory.setPort(port);
        factory.setUsername(user);
        factory.setPassword(password);
        factory.setRequestedHeartbeat(heartbeat);
        factory.setRequestedFrameMax(frameMax);
        factory.setConnectionTimeout(10000);
        factory.setAutomaticRecoveryEnabled(false);
        return factory.newConnection();
    }

    static void run(String scenario, String host, int port, String user, String password) throws Exception {
        if (scenario.equals("auth")) {
            try {
                connect(host, port, user, password, 0).close();
            } catch (AuthenticationFailureException e) {
                if (!e.getMessage().contains("ACCESS_REFUSED")) throw new Mismatch("refused without 403: " + e);
                return;
            }
            throw new Mismatch("logged in with a wrong password");
        }
        Connection conn = connect(host, port, user, password, scenario.equals("heartbeat") ? 1 : 0,
                scenario.equals("frame-max-4096") ? 4096 : 131072);
        if (scenario.equals("frame-max-4096") && conn.getFrameMax() != 4096) {
            throw new Mismatch("frame_max " + conn.getFrameMax() + " negotiated, asked for 4096");
        }
        switch (scenario) {
            case "heartbeat":
                Thread.sleep(IDLE_SECONDS * 1000L); // the client's own thread sends heartbeats
                basic(conn, false);
                break;
            case "confirm-consume":
                basic(conn, true);
                break;
            case "tables":
                tables(conn);
                break;
            default:
                basic(conn, false);
        }
        conn.close();
    }

    public static void main(String[] args) {
        List<String> scenarios = Arrays.asList("basic", "auth", "heartbeat", "confirm-consume", "tables", "frame-max-4096");
        if (args.length != 5 || !scenarios.contains(args[0])) {
            System.err.println("usage: InteropClient {" + String.join(",", scenarios) + "} HOST PORT USER PASSWORD");
            System.exit(2);
        }
        try {
            run(args[0], args[1], Integer.parseInt(args[2]), args[3], args[4]);
        } catch (Mismatch e) {
            System.err.println("MISMATCH: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            e.printStackTrace();
            System.err.println("FAILED: the client raised (stack trace above)");
            System.exit(1);
        }
        System.out.println("ok " + args[0]);
        System.exit(0);
    }
}
