package zrpc_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/tidstorage/tidstorage/zrpc"
)

// The proxy's hot path: read a frame header, peek at the envelope head,
// forward the original bytes unchanged, and pick out the 2PC facts without
// decoding arguments or allocating per frame.
func Example_relay() {
	// what a ZEO 5 client would send (pickle), handshake first
	var in bytes.Buffer
	zrpc.WriteFrame(&in, []byte("Z5"))
	for _, m := range []*zrpc.Message{
		zrpc.AsyncMessage(&zrpc.TPCBegin{TxnID: 42, User: []byte("u"), Description: []byte("d"), Status: " "}),
		zrpc.AsyncMessage(&zrpc.Storea{OID: make([]byte, 8), Serial: make([]byte, 8), Data: make([]byte, 1<<20), TxnID: 42}),
		zrpc.CallMessage(7, &zrpc.Vote{TxnID: 42}),
	} {
		p, _ := zrpc.EncodeMessage(zrpc.Pickle, m)
		zrpc.WriteFrame(&in, p)
	}

	original := bytes.Clone(in.Bytes())
	var out bytes.Buffer // the server side
	fr := zrpc.NewFrameReader(&in)
	hello, _ := fr.ReadFrame()
	hs, _ := zrpc.ParseClientHandshake(hello)
	zrpc.WriteFrame(&out, hello)
	enc := hs.Protocol.Encoding
	for {
		h, err := fr.ReadHeader()
		if err == io.EOF {
			break
		}
		head, _ := fr.PeekPayload(256)
		pk, err := zrpc.PeekMessage(enc, head)
		if err != nil {
			// not decodable: keep relaying, mark the storage blind
		}
		switch pk.Method {
		case zrpc.MethodTPCBegin, zrpc.MethodVote:
			txn, _ := zrpc.PeekFirstArgUint(enc, head, &pk)
			fmt.Printf("%s txnid=%d msgid=%d\n", pk.Name, txn, pk.MsgID)
		default:
			fmt.Printf("%s (%d bytes)\n", pk.Name, h.Size)
		}
		// forward the original bytes: header, then the payload streamed
		out.Write(zrpc.AppendFrameHeader(nil, int(h.Size)))
		io.Copy(&out, fr.Payload())
	}
	fmt.Println("relayed unchanged:", bytes.Equal(out.Bytes(), original))
	// Output:
	// tpc_begin txnid=42 msgid=0
	// storea (1048624 bytes)
	// vote txnid=42 msgid=7
	// relayed unchanged: true
}
