// The interop scenario (see scenario.py) with amqp091-go, RabbitMQ's Go client.
// Build: GOPATH=/usr/share/gocode GO111MODULE=off go build -o client_amqp091 client_amqp091.go
// Usage: client_amqp091 SCENARIO HOST PORT USER PASSWORD
//
// One more scenario, "finding-int", reproduces a finding (the README's interop section): it
// publishes the header {"big": int(1<<40 + 5)} to the queue "amqpcodec.interop.finding-int"
// and leaves it there for the test to read at the broker.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const contentType = "application/x-amqpcodec-interop"
const idleSeconds = 7

var sizes = []int{0, 10, 5000, 300000}

type mismatch struct{ what string }

func (m mismatch) Error() string { return m.what }

func fail(format string, args ...interface{}) error { return mismatch{fmt.Sprintf(format, args...)} }

func body(n int) []byte {
	b := make([]byte, sizes[n])
	for i := range b {
		b[i] = byte((i*31 + n) % 251)
	}
	return b
}

func headers(n int) amqp.Table {
	return amqp.Table{
		"s": "amqpcodec", "n": int32(n), "b": true,
		"t": amqp.Table{"k": "v", "x": int32(1)},
		"a": []interface{}{int32(1), "two"},
	}
}

// normalise gives integers one type (the width a value comes back in depends on the peer).
func normalise(v interface{}) interface{} {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int:
		return int64(x)
	case amqp.Table:
		out := map[string]interface{}{}
		for k, e := range x {
			out[k] = normalise(e)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	case time.Time:
		return x.Unix()
	}
	return v
}

func connect(host, port, user, password string, heartbeat time.Duration, frameMax int) (*amqp.Connection, error) {
	u := url.URL{Scheme: "amqp", User: url.UserPassword(user, password), Host: net.JoinHostPort(host, port), Path: "/"}
	return amqp.DialConfig(u.String(), amqp.Config{Heartbeat: heartbeat, FrameSize: frameMax, Locale: "en_US"})
}

func basic(conn *amqp.Connection, consumeFirst bool) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, len(sizes)))
	var deliveries <-chan amqp.Delivery
	consume := func() (err error) {
		deliveries, err = ch.Consume(q.Name, "", false, false, false, false, nil)
		return
	}
	if consumeFirst { // consume while waiting for the confirms
		if err := consume(); err != nil {
			return err
		}
	}
	for n := range sizes {
		p := amqp.Publishing{ContentType: contentType, DeliveryMode: 2, Headers: headers(n), Body: body(n)}
		if err := ch.Publish("", q.Name, true, false, p); err != nil {
			return err
		}
	}
	for n := range sizes {
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag != uint64(n+1) {
				return fail("confirm %d: %+v", n+1, c)
			}
		case <-time.After(30 * time.Second):
			return fail("confirm %d of %d never came", n+1, len(sizes))
		}
	}
	if !consumeFirst {
		if err := consume(); err != nil {
			return err
		}
	}
	for n := range sizes {
		var d amqp.Delivery
		select {
		case d = <-deliveries:
		case <-time.After(30 * time.Second):
			return fail("%d of %d messages came back", n, len(sizes))
		}
		if !bytes.Equal(d.Body, body(n)) {
			return fail("message %d: body of %d bytes, expected %d", n, len(d.Body), sizes[n])
		}
		if d.ContentType != contentType {
			return fail("message %d: content_type %q", n, d.ContentType)
		}
		if d.DeliveryMode != 2 {
			return fail("message %d: delivery_mode %d", n, d.DeliveryMode)
		}
		if !reflect.DeepEqual(normalise(d.Headers), normalise(headers(n))) {
			return fail("message %d: headers %v", n, d.Headers)
		}
		if err := d.Ack(false); err != nil {
			return err
		}
	}
	return ch.Close()
}

func tables(conn *amqp.Connection) error {
	stamp := time.Unix(1704164645, 0)
	table := amqp.Table{
		"longstr": "text", "bytes": []byte{0, 255}, "octet": byte(250), "int8": int8(-5),
		"int16": int16(-300), "int32": int32(-70000), "int64": int64(1) << 40,
		"float32": float32(1.5), "float64": 2.5, "decimal": amqp.Decimal{Scale: 2, Value: 314},
		"timestamp": stamp, "bool": false, "void": nil,
		"table": amqp.Table{"inner": amqp.Table{"deep": int32(1)}},
		"array": []interface{}{int32(1), "two", true, nil, []interface{}{int32(3)}},
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return err
	}
	if err := ch.Publish("", q.Name, false, false, amqp.Publishing{Headers: table, Body: []byte("t")}); err != nil {
		return err
	}
	var msg amqp.Delivery
	ok := false
	for i := 0; i < 100 && !ok; i++ {
		if msg, ok, err = ch.Get(q.Name, true); err != nil {
			return err
		}
		if !ok {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !ok {
		return fail("the message did not come back")
	}
	if !reflect.DeepEqual(normalise(msg.Headers), normalise(table)) {
		return fail("table came back as %#v, sent %#v", msg.Headers, table)
	}
	return ch.Close()
}

func findingInt(conn *amqp.Connection) error {
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	q, err := ch.QueueDeclare("amqpcodec.interop.finding-int", false, false, false, false, nil)
	if err != nil {
		return err
	}
	p := amqp.Publishing{Headers: amqp.Table{"big": int(1<<40 + 5)}, Body: []byte("int")}
	if err := ch.Publish("", q.Name, false, false, p); err != nil {
		return err
	}
	return ch.Close()
}

func run(scenario, host, port, user, password string) error {
	if scenario == "auth" {
		conn, err := connect(host, port, user, password, 0, 0)
		if err == nil {
			conn.Close()
			return fail("logged in with a wrong password")
		}
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.AccessRefused {
			return nil
		}
		return fail("refused without 403: %v", err)
	}
	heartbeat := 10 * time.Second // the client's default
	if scenario == "heartbeat" {
		heartbeat = time.Second
	}
	frameMax := 0 // the server's
	if scenario == "frame-max-4096" {
		frameMax = 4096
	}
	conn, err := connect(host, port, user, password, heartbeat, frameMax)
	if err != nil {
		return err
	}
	if frameMax != 0 && conn.Config.FrameSize != frameMax {
		return fail("frame_max %d negotiated, asked for %d", conn.Config.FrameSize, frameMax)
	}
	switch scenario {
	case "heartbeat":
		time.Sleep(idleSeconds * time.Second) // the client's goroutines send and expect heartbeats
		err = basic(conn, false)
	case "confirm-consume":
		err = basic(conn, true)
	case "tables":
		err = tables(conn)
	case "finding-int":
		err = findingInt(conn)
	default:
		err = basic(conn, false)
	}
	if err != nil {
		return err
	}
	return conn.Close()
}

func main() {
	scenarios := map[string]bool{"basic": true, "auth": true, "heartbeat": true, "confirm-consume": true, "tables": true, "frame-max-4096": true, "finding-int": true}
	if len(os.Args) != 6 || !scenarios[os.Args[1]] {
		fmt.Fprintln(os.Stderr, "usage: client_amqp091 {basic,auth,heartbeat,confirm-consume,tables,frame-max-4096,finding-int} HOST PORT USER PASSWORD")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3], os.Args[4], os.Args[5]); err != nil {
		var m mismatch
		if errors.As(err, &m) {
			fmt.Fprintln(os.Stderr, "MISMATCH:", err)
		} else {
			fmt.Fprintln(os.Stderr, "FAILED:", err)
		}
		os.Exit(1)
	}
	fmt.Println("ok", os.Args[1])
}
