package zrpc_test

import (
	"bytes"
	"fmt"

	"github.com/tidstorage/tidstorage/zrpc"
)

// What a relay does with each frame: peek at the envelope head (method and
// msgid) without decoding the arguments or allocating, and forward the
// original bytes unchanged.
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
		p, err := fr.ReadFrame()
		if err != nil {
			break
		}
		pk, err := zrpc.PeekMessage(enc, p[:min(len(p), 512)])
		if err != nil {
			// not decodable: keep relaying, mark the storage blind
		}
		fmt.Printf("%s msgid=%d (%d bytes)\n", pk.Name, pk.MsgID, len(p))
		zrpc.WriteFrame(&out, p) // the original bytes
	}
	fmt.Println("relayed unchanged:", bytes.Equal(out.Bytes(), original))
	// Output:
	// tpc_begin msgid=0 (40 bytes)
	// storea msgid=0 (1048624 bytes)
	// vote msgid=7 (20 bytes)
	// relayed unchanged: true
}
