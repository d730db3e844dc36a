package tracker

import (
	"fmt"
	"time"
)

// Tick declares lost every classic transaction in flight for longer than
// the timeout, warns about lagging storages and reports unaccounted commits
// that waited long enough (accounting.go). The daemon calls it periodically.
//
// awaited are the storages on which a reporting observer is known to be
// behind at this tick: a sidecar whose stream is down, reconnecting and
// resending what it buffered, or refused (the daemon knows the sidecars,
// fleet.Server). Their unaccounted commits wait ResendWait instead of
// UnaccountedGrace: the resend may still account for them.
func (m *Machine) Tick(now int64, awaited ...string) {
	m.step(now)
	m.awaited = m.awaited[:0]
	for _, name := range awaited {
		if i, ok := m.stIdx[name]; ok {
			m.awaited = append(m.awaited, i)
		}
	}
	for c := m.cHead.next; c != &m.cHead; c = m.cHead.next {
		if now-c.began < m.timeout {
			break
		}
		m.loseCtxn(c, fmt.Sprintf("no COMMIT or ABORT within %v", durationString(m.timeout)))
	}
	m.checkLag(now)
	m.reportUnaccounted(now)
}

// checkLag reports storages whose published TID has not moved for
// LagWarning while newer commits are known: something keeps them out of the
// point (transactions or pins of their group), which must not go
// unexplained.
func (m *Machine) checkLag(now int64) {
	lim := int64(m.cfg.LagWarning)
	if lim <= 0 || !m.bootstrapped {
		return
	}
	for _, i := range m.sorted {
		s := &m.st[i]
		if !s.hasPublished || s.transient <= s.published || now-s.pubAt < lim || now-s.lagWarned < lim {
			continue
		}
		s.lagWarned = now
		why := "nothing in flight"
		if g := s.group; g != nil {
			why = fmt.Sprintf("its group {%s} has %d linked participation sets, %d classic transactions and %d pins in flight",
				m.names(g.members), len(g.lsets), len(g.classic), len(g.pins))
		}
		m.warn(CodeGroupLag, "storage %s: published TID %s has not moved for %v while %s is committed: %s",
			s.name, s.published.Hex(), time.Duration(now-s.pubAt).Round(time.Second), s.transient.Hex(), why)
	}
}

func durationString(ns int64) string {
	return time.Duration(ns).String()
}
