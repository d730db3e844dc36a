package tracker

import "fmt"

// CodeUnconfiguredID: a classic BEGIN or COMMIT named a storage id that no
// configured storage has.
const CodeUnconfiguredID Code = "classic_unconfigured_storage"

// checkClassicIDs warns about the storage ids of a classic report (the
// storages of tids, then ids, in the order the report interns them) that no configured storage has and that this
// Machine does not know yet: once per id, since the report makes it known.
// Such ids are still tracked and published — a patched Zope's BEGIN lists
// every storage its transaction touches, and ignoring one would let a point
// cut that transaction — but one is usually a typo or a storage moved
// elsewhere, and after a restart it is only present once reported again (a
// full line without it means it left the point; statusfile.Replay).
// Nothing is checked when no storage is configured (a classic-only
// daemon). Called before the report's ids are interned.
func (m *Machine) checkClassicIDs(tids []StorageTID, ids []string) {
	if len(m.cfg.Storages) == 0 {
		return
	}
	for _, t := range tids {
		m.checkClassicID(t.Storage)
	}
	for _, id := range ids {
		m.checkClassicID(id)
	}
}

func (m *Machine) checkClassicID(id string) {
	if _, known := m.stIdx[id]; known {
		return
	}
	m.intern(id) // known from now on: warned once
	m.emit(Record{Kind: RecWarning, Code: CodeUnconfiguredID, Storage: id,
		Msg: fmt.Sprintf("classic client reports storage %q, which no configured storage has: tracked and published, but only while reported (warned once)", id)})
}
