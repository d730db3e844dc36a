package statusdoc

// AcceptResult is the reply of a successful POST /accept-partial.
type AcceptResult struct {
	Accepted bool   `json:"accepted"`
	Pin      PinDoc `json:"pin"` // as it was just before it was released
	// Published lists the pinned storages' published TIDs after the
	// release (they may have moved at once, if nothing else holds them).
	Published []HeldDoc `json:"published"`
}

// ErrorDoc is the body of every JSON error reply.
type ErrorDoc struct {
	Error string `json:"error"`
}
