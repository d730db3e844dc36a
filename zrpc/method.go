package zrpc

// Method is a small enum of the method names the proxy and client care
// about; the peek path returns it without allocating.
type Method uint8

const (
	MethodUnknown Method = iota
	MethodReply          // ".reply"
	MethodRegister
	MethodTPCBegin
	MethodVote
	MethodTPCFinish
	MethodTPCAbort
	MethodStorea
	MethodStoreBlobStart
	MethodStoreBlobChunk
	MethodStoreBlobEnd
	MethodStoreBlobShared
	MethodCheckCurrentSerial
	MethodDeleteObject
	MethodRestorea
	MethodUndoa
	MethodLoadBefore
	MethodLastTransaction
	MethodGetInfo
	MethodPing
	MethodIteratorStart
	MethodIteratorNext
	MethodInvalidateTransaction
	MethodInfo
	MethodSerialnos // ZEO 4 only
	MethodReceiveBlobStart
	MethodReceiveBlobChunk
	MethodReceiveBlobStop
	MethodGetInvalidations
	MethodNewOids
	methodCount
)

var methodNames = [methodCount]string{
	MethodUnknown:               "",
	MethodReply:                 ReplyName,
	MethodRegister:              "register",
	MethodTPCBegin:              "tpc_begin",
	MethodVote:                  "vote",
	MethodTPCFinish:             "tpc_finish",
	MethodTPCAbort:              "tpc_abort",
	MethodStorea:                "storea",
	MethodStoreBlobStart:        "storeBlobStart",
	MethodStoreBlobChunk:        "storeBlobChunk",
	MethodStoreBlobEnd:          "storeBlobEnd",
	MethodStoreBlobShared:       "storeBlobShared",
	MethodCheckCurrentSerial:    "checkCurrentSerialInTransaction",
	MethodDeleteObject:          "deleteObject",
	MethodRestorea:              "restorea",
	MethodUndoa:                 "undoa",
	MethodLoadBefore:            "loadBefore",
	MethodLastTransaction:       "lastTransaction",
	MethodGetInfo:               "get_info",
	MethodPing:                  "ping",
	MethodIteratorStart:         "iterator_start",
	MethodIteratorNext:          "iterator_next",
	MethodInvalidateTransaction: "invalidateTransaction",
	MethodInfo:                  "info",
	MethodSerialnos:             "serialnos",
	MethodReceiveBlobStart:      "receiveBlobStart",
	MethodReceiveBlobChunk:      "receiveBlobChunk",
	MethodReceiveBlobStop:       "receiveBlobStop",
	MethodGetInvalidations:      "getInvalidations",
	MethodNewOids:               "new_oids",
}

// String returns the wire name ("" for MethodUnknown).
func (m Method) String() string {
	if m < methodCount {
		return methodNames[m]
	}
	return ""
}

// MethodOf maps a wire name to its Method (MethodUnknown if not listed).
func MethodOf(name string) Method { return methodOfBytes([]byte(name)) }

// methodOfBytes does not allocate: the compiler turns switch string(b)
// into comparisons without a conversion.
func methodOfBytes(b []byte) Method {
	switch string(b) {
	case ".reply":
		return MethodReply
	case "register":
		return MethodRegister
	case "tpc_begin":
		return MethodTPCBegin
	case "vote":
		return MethodVote
	case "tpc_finish":
		return MethodTPCFinish
	case "tpc_abort":
		return MethodTPCAbort
	case "storea":
		return MethodStorea
	case "storeBlobStart":
		return MethodStoreBlobStart
	case "storeBlobChunk":
		return MethodStoreBlobChunk
	case "storeBlobEnd":
		return MethodStoreBlobEnd
	case "storeBlobShared":
		return MethodStoreBlobShared
	case "checkCurrentSerialInTransaction":
		return MethodCheckCurrentSerial
	case "deleteObject":
		return MethodDeleteObject
	case "restorea":
		return MethodRestorea
	case "undoa":
		return MethodUndoa
	case "loadBefore":
		return MethodLoadBefore
	case "lastTransaction":
		return MethodLastTransaction
	case "get_info":
		return MethodGetInfo
	case "ping":
		return MethodPing
	case "iterator_start":
		return MethodIteratorStart
	case "iterator_next":
		return MethodIteratorNext
	case "invalidateTransaction":
		return MethodInvalidateTransaction
	case "info":
		return MethodInfo
	case "serialnos":
		return MethodSerialnos
	case "receiveBlobStart":
		return MethodReceiveBlobStart
	case "receiveBlobChunk":
		return MethodReceiveBlobChunk
	case "receiveBlobStop":
		return MethodReceiveBlobStop
	case "getInvalidations":
		return MethodGetInvalidations
	case "new_oids":
		return MethodNewOids
	}
	return MethodUnknown
}
