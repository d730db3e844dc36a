package zrpc

// For the tests of the fast pickle path against og-rek.
var (
	FastPickle         = fastPickle
	DecodePickleOgorek = decodePickleOgorek
)
