// Package rpc is a multiplexed RPC with typed methods and no generated
// code: many services share one server and port, many concurrent calls
// share one connection, and a method is called with plain Go types.
//
// # Use
//
// A method is declared once, by name and types, and shared by both ends:
//
//	svc := rpc.NewService("kv")
//	get, err := rpc.Register(svc, "Get", func(ctx context.Context, key string) ([]byte, error) {
//		return store.Get(ctx, key)
//	})
//	srv, err := rpc.NewServer(rpc.Config{})
//	err = srv.AddService(svc)
//	go srv.Serve(ln)
//
// and on the client, with the *Method from Register or an equal one from
// NewMethod[string, []byte]("kv", "Get"):
//
//	c, err := rpc.Dial(ctx, "10.0.0.7:7000", rpc.ClientConfig{})
//	val, err := get.Call(ctx, c, "answer")
//
// A Pool keeps one Client per address and redials after a failure; a
// Server's LocalClient (or a Pool address registered with SetLocal)
// calls handlers in process, skipping the network and the codecs.
//
// # Codecs
//
// A []byte request or response is sent as it is, a string as its bytes,
// a bool as one byte and an integer as a varint. A type T whose pointer
// implements encoding.BinaryAppender and encoding.BinaryUnmarshaler uses
// those methods; this and []byte are the fast path. (Such a type should
// also implement encoding.BinaryMarshaler if it is ever nested in a
// gob-encoded value, since gob decodes with UnmarshalBinary when it
// exists.) Any other type falls back to encoding/gob, one self-describing
// value per message; zero-size types such as struct{} are sent as
// nothing. The choice is made once, when the Method is created, so calls
// use no reflection beyond what gob itself does.
//
// # Wire format
//
// Each direction of a connection is a sequence of frames:
//
//	length   uint32  big endian: bytes of header and payload that follow
//	kind     uint8   1 request, 2 response, 3 error, 4 cancel, 5 notify
//	id       uint64  request id, chosen by the client, unique among its running calls
//	service  uint64  ServiceID of the service (requests and notifies; 0 otherwise)
//	method   uint64  MethodID of the method (requests and notifies; 0 otherwise)
//	deadline int64   unix nanoseconds after which the caller gives up; 0 for none
//	payload  length-33 bytes
//
// All integers are big endian. Service and method ids are the FNV-1a
// 64-bit hashes of their names (see ServiceID and MethodID), so both
// ends agree without a registry. A response or error frame carries the
// id of its request and nothing in service, method and deadline. An
// error payload is a code byte (1 remote error, 2 service not found,
// 3 method not found, 4 shutting down, 5 frame too large, 6 deadline
// exceeded) followed, for remote errors, by the handler's message. A
// cancel frame carries the id of a request whose caller gave up. A notify
// frame is a one-way request (Method.Notify): id 0, never answered, run
// on the connection's reader in the order received, which is what a
// stream of ordered messages such as raft's wants.
//
// A length above the configured maximum (DefaultMaxFrameSize, 8 MiB) is
// refused before anything is allocated for the frame, and the connection
// is closed; so is a connection that sends an unknown kind, a frame
// shorter than its header, or the id of a request still running.
//
// # Concurrency, deadlines and limits
//
// The server runs requests concurrently, so a slow handler does not hold
// up others. A request normally runs on a worker goroutine (workers are
// reused per connection). When its method has proved quick (several runs
// in a row under 100 µs) and no other frame is waiting behind it, it runs
// on the connection's reader goroutine instead, saving the wake-up of a
// hand-off, which on a lightly loaded machine is a third of a loopback
// round trip. Should such a handler block after all, a server-wide
// rescuer notices within one to two milliseconds, hands the reading of
// the connection to a new goroutine and sends the method back to workers
// until it proves quick again; so a call may wait that long behind a
// handler that turned slow, never longer.
//
// At most Config.MaxInFlight requests run per connection, and the
// requests and notifications in flight on all connections together hold
// at most Config.MaxInFlightBytes bytes of frame (64 MiB by default).
// Beyond either bound the server stops reading the connection, which
// pushes back on the client through TCP flow control rather than failing
// calls; connections waiting for bytes are served in arrival order, so a
// large request is never starved by small ones. Config.MaxConnections,
// when set, makes Serve stop accepting at that many connections until
// one closes. Notifications run one at a time on the connection's
// reader, outside MaxInFlight (but inside the byte budget), so their
// handlers must be quick. The handler's context carries the caller's
// deadline and ends when the caller cancels (a cancel frame), the
// connection closes or the server closes.
//
// On the client, frames from concurrent callers are coalesced into few
// writes. A caller that finds the connection quiet reads its own answer;
// otherwise the client's goroutine reads answers and hands each to its
// caller. A response for a caller that gave up is dropped.
//
// # Who owns a []byte
//
// Over a network connection:
//   - A handler's []byte request (or the bytes a request type's
//     UnmarshalBinary is given) is allocated for that request alone and
//     never reused by the server, so the handler may keep it, and change
//     it, after returning. The same holds for notification handlers. (A
//     kept request of up to 256 bytes keeps alive the few hundred bytes
//     of the server's record of the call, which it shares.)
//   - A handler's []byte response is copied into the connection's write
//     buffer after the handler returns; nothing may change it until then,
//     so return a slice that no other goroutine writes to.
//   - The []byte response Call returns is allocated for that answer
//     alone: the caller owns it. The request passed to Call or Notify is
//     copied before they return, so the caller may reuse it afterwards.
//
// Through a LocalClient nothing is copied: the handler receives the
// caller's request slice itself and the caller the handler's response
// slice. There a handler that keeps its request, or a caller that
// changes a buffer after passing or receiving it, must copy it.
//
// Deadlines are absolute times, so they assume loosely synchronised
// clocks; the client enforces its own deadline in any case.
package rpc
