package zeoproxy

// Fault injection for tests: around the forwarding of a tpc_finish to the
// named storage, cut the server connection before the frame is sent (the
// server aborts) or right after it (committed, reply never relayed).
const (
	FaultNone      = faultNone
	FaultCutBefore = faultCutBefore
	FaultCutAfter  = faultCutAfter
)

type FaultAction = faultAction

// WithFault returns cfg with a fault injector.
func WithFault(cfg Config, f func(storageName string) FaultAction) Config {
	cfg.fault = f
	return cfg
}
