package classic

import "sync/atomic"

// Stats is a snapshot of the server's counters, for metrics. Counters only
// grow, except ConnectionsActive.
type Stats struct {
	ConnectionsAccepted uint64 // connections admitted and served
	ConnectionsActive   int64  // connections being served now
	ConnectionsRefused  uint64 // closed at once: MaxConns reached
	ConnectionsDenied   uint64 // closed at once: peer not in the allow-list
	// ConnectionsIdleClosed: closed after IdleTimeout without a command;
	// ConnectionsEvicted: closed, idle, to admit a new one at MaxConns.
	ConnectionsIdleClosed uint64
	ConnectionsEvicted    uint64

	Commands CommandStats // complete commands handed to the backend or answered

	ProtocolErrors uint64 // connections closed for breaking the protocol
	TornCommands   uint64 // commands discarded because the stream ended inside them
}

// CommandStats counts complete commands by kind.
type CommandStats struct {
	Begin, Abort, Commit, Dump, Bootstraped, Quit uint64
}

// counters are updated from every connection goroutine. The command counters
// sit apart from the connection counters so the hot ones do not share a
// cache line with the rest.
type counters struct {
	accepted, refused, denied atomic.Uint64
	idleClosed, evicted       atomic.Uint64
	active                    atomic.Int64
	protocolErrors, torn      atomic.Uint64
	_                         [64]byte
	commands                  [kindQuit + 1]atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		ConnectionsAccepted:   c.accepted.Load(),
		ConnectionsActive:     c.active.Load(),
		ConnectionsRefused:    c.refused.Load(),
		ConnectionsDenied:     c.denied.Load(),
		ConnectionsIdleClosed: c.idleClosed.Load(),
		ConnectionsEvicted:    c.evicted.Load(),
		Commands: CommandStats{
			Begin:       c.commands[kindBegin].Load(),
			Abort:       c.commands[kindAbort].Load(),
			Commit:      c.commands[kindCommit].Load(),
			Dump:        c.commands[kindDump].Load(),
			Bootstraped: c.commands[kindBootstraped].Load(),
			Quit:        c.commands[kindQuit].Load(),
		},
		ProtocolErrors: c.protocolErrors.Load(),
		TornCommands:   c.torn.Load(),
	}
}
