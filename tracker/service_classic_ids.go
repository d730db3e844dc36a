package tracker

import "fmt"

// CodeUnconfiguredID: a classic BEGIN or COMMIT named a storage id that no
// configured storage has.
const CodeUnconfiguredID Code = "classic_unconfigured_storage"

// checkClassicIDs warns once per id about classic reports for storage ids
// that no configured storage has. They are still tracked
// and published — a patched Zope's BEGIN lists every storage its
// transaction touches, and ignoring one would let a point cut that
// transaction — but such an id is usually a typo or a storage moved
// elsewhere, and after a restart it is only present once reported again (a
// full line without it means it left the point; statusfile.Replay).
// Nothing is checked when no storage is configured (a classic-only
// daemon). (s.mu held.)
func (s *Service) checkClassicIDs(ids []string) {
	for _, id := range ids {
		s.checkClassicID(id)
	}
}

func (s *Service) checkClassicID(id string) {
	if s.configured == nil || s.configured[id] || s.unknown[id] {
		return
	}
	if s.unknown == nil {
		s.unknown = map[string]bool{}
	}
	s.unknown[id] = true
	s.logs.push(logEntry{rec: Record{Kind: RecWarning, Code: CodeUnconfiguredID, Storage: id,
		Msg: fmt.Sprintf("classic client reports storage %q, which no configured storage has: tracked and published, but only while reported (warned once)", id)}})
}
