package tracker

import (
	"fmt"
	"sort"

	"github.com/tidstorage/tidstorage/internal/txn"
)

// storage is the per-storage state. Storages are interned: everything else
// refers to them by index into Machine.st.
type storage struct {
	name         string
	published    txn.TID
	transient    txn.TID // highest TID known committed (bootstrap or observed)
	hasPublished bool
	known        bool   // transient holds a real value
	expected     bool   // listed in Config.Storages
	group        *group // nil while nothing in flight touches it
	commits      uint64 // commits observed
	blind        int32  // open blind connections
	blindPin     *pin
	waiters      []*pin  // await-commit pins waiting for a commit here
	cand, best   txn.TID // scratch of advance
	bestOK       bool    // best is a real value (published, known commit)
	pubAt        int64   // time of the last publication
	lagWarned    int64
	// Ground truth (accounting.go).
	watched  bool
	warnOnly bool
	hist     txn.TID // every commit at or below hist was reported by the history
	// floor: the point the previous run published (its status file's last
	// line) when the replayed journal ends behind it (recover.go): every
	// commit at or below it is accounted for and vouched for.
	floor      txn.TID
	acc        []txn.TID     // accounted commits above hist, ascending
	unacc      []unaccounted // history commits nothing accounted for, ascending
	unaccPin   *pin
	unaccTotal uint64     // unaccounted commits reported
	awaiting   []awaiting // accounted commits above hist whose unit waits for the history
	settleAt   txn.TID    // recover.go: the live last TID read at restart
	settling   bool
	// blindSettle: the storage was blind when the previous process died:
	// the commits seen meanwhile are accounted for up to settleAt once
	// its orphans are resolved (recover.go).
	blindSettle bool
	// fresh: a classic transaction whose BEGIN this machine saw committed
	// a TID here (Config.ClassicOnly's bootstrap rule).
	fresh bool
}

// bound is the highest TID storage s may publish as far as its own history
// is concerned (docs/design.md, "Ground truth").
func (s *storage) bound() txn.TID {
	if !s.watched {
		return s.transient
	}
	return min(s.transient, s.vouched())
}

// vouched is how far the storage's history vouches for its commits: its own
// position, or the previous run's published point (floor) when that is
// higher (recover.go).
func (s *storage) vouched() txn.TID { return max(s.hist, s.floor) }

// group is a set of storages linked by in-flight units (participations,
// classic transactions, pins). While busy it publishes what it safely can
// (advance, frontier.go); when busy drops to zero every member publishes its
// transient value and the group dissolves: groups only merge while busy.
type group struct {
	members []int32
	busy    int32
	// The units in flight and the ended transactions not yet wholly
	// published (see frontier.go).
	lsets   []*linkSet
	classic []*ctxn
	pins    []*pin
	done    []*doneTxn
}

// Machine is the tracker's pure state machine. It is not safe for
// concurrent use; Service wraps it. Every input takes the current time in
// unix nanoseconds; nothing inside reads a clock.
type Machine struct {
	cfg     Config
	timeout int64
	seq     uint64 // input counter, orders phases of participations
	now     int64

	st     []storage
	stIdx  map[string]int32
	sorted []int32 // storage indices sorted by name

	freeGroups []*group
	freeDone   []*doneTxn

	parts     map[txn.PartID]*part
	freeParts []*part
	keyed     map[txn.Key]*linkSet
	freeLS    []*linkSet

	classic     map[string]*ctxn
	cHead       ctxn // sentinel of the in-flight list, in begin order
	freeClassic []*ctxn

	pins    []*pin // active pins, ascending id
	nextPin uint64

	// lostReports: this run recovered from a journal that lost its tail
	// (recover.go): an unaccounted commit may be one whose report went
	// with it.
	lostReports   bool
	bootstrapped  bool
	bootRequested bool
	bootRestored  bool // a snapshot said bootstrapped: the ClassicOnly rule is settled
	// bootArmed: the ClassicOnly rule was met by input bootSeq;
	// publication starts when a later classic transaction ends
	// (classicEnded).
	bootArmed bool
	bootSeq   uint64
	clean     bool
	missing   int // expected storages without a known value

	recs []Record
	ctr  Counters

	sources map[string]uint64 // input.go: last Seq applied per remote observer
	awaited []int32           // Tick: storages a remote observer is behind on
	remote  bool              // the event being applied is a remote observer's (Apply)
	src     string            // and that observer's name

	scratch     []int32
	doneScratch []doneCommit
	u64a, u64b  []uint64
	oneIdx      [1]int32
}

// New returns a Machine with nothing known.
func New(cfg Config) *Machine {
	m := &Machine{
		cfg:     cfg,
		timeout: int64(cfg.ClassicTimeout),
		stIdx:   make(map[string]int32),
		parts:   make(map[txn.PartID]*part),
		keyed:   make(map[txn.Key]*linkSet),
		classic: make(map[string]*ctxn),
		sources: make(map[string]uint64),
		clean:   true,
		nextPin: 1,
	}
	if m.timeout <= 0 {
		m.timeout = int64(DefaultClassicTimeout)
	}
	if m.cfg.LagWarning == 0 {
		m.cfg.LagWarning = DefaultLagWarning
	}
	m.cHead.next, m.cHead.prev = &m.cHead, &m.cHead
	for _, s := range cfg.Storages {
		i := m.intern(s)
		if !m.st[i].expected {
			m.st[i].expected = true
			m.missing++
		}
	}
	if len(cfg.Storages) > 0 {
		m.bootRequested = true
	}
	return m
}

// Records returns the output records produced since the last ClearRecords.
// The slice is reused: copy what must outlive the next input.
func (m *Machine) Records() []Record { return m.recs }

// ClearRecords forgets the drained records.
func (m *Machine) ClearRecords() {
	for i := range m.recs {
		m.recs[i] = Record{}
	}
	m.recs = m.recs[:0]
}

// Counters returns the totals so far.
func (m *Machine) Counters() Counters { return m.ctr }

func (m *Machine) step(now int64) {
	m.seq++
	m.ctr.Events++
	if now > m.now {
		m.now = now
	}
}

func (m *Machine) emit(r Record) {
	r.Time = m.now
	switch r.Kind {
	case RecWarning:
		m.ctr.Warnings++
	case RecCritical:
		m.ctr.Criticals++
	}
	m.recs = append(m.recs, r)
}

func (m *Machine) warn(code Code, format string, args ...any) {
	m.emit(Record{Kind: RecWarning, Code: code, Msg: fmt.Sprintf(format, args...)})
}

func (m *Machine) intern(name string) int32 {
	if i, ok := m.stIdx[name]; ok {
		return i
	}
	i := int32(len(m.st))
	m.st = append(m.st, storage{name: name})
	m.stIdx[name] = i
	// Keep m.sorted ordered; new storages are rare.
	pos := sort.Search(len(m.sorted), func(k int) bool { return m.st[m.sorted[k]].name >= name })
	m.sorted = append(m.sorted, 0)
	copy(m.sorted[pos+1:], m.sorted[pos:])
	m.sorted[pos] = i
	return i
}

func (m *Machine) newGroup(s int32) *group {
	var g *group
	if n := len(m.freeGroups); n > 0 {
		g = m.freeGroups[n-1]
		m.freeGroups = m.freeGroups[:n-1]
	} else {
		g = &group{}
	}
	g.members = append(g.members[:0], s)
	g.busy = 0
	m.st[s].group = g
	return g
}

// acquire returns the group of storage s, creating a singleton if idle.
func (m *Machine) acquire(s int32) *group {
	if g := m.st[s].group; g != nil {
		return g
	}
	return m.newGroup(s)
}

// merge unions two groups (the smaller moves into the larger).
func (m *Machine) merge(a, b *group) *group {
	if a == b {
		return a
	}
	if len(a.members) < len(b.members) {
		a, b = b, a
	}
	for _, s := range b.members {
		m.st[s].group = a
	}
	a.members = append(a.members, b.members...)
	a.busy += b.busy
	a.lsets = append(a.lsets, b.lsets...)
	a.classic = append(a.classic, b.classic...)
	a.pins = append(a.pins, b.pins...)
	a.done = append(a.done, b.done...)
	m.freeGroup(b)
	return a
}

func (m *Machine) freeGroup(g *group) {
	g.members = g.members[:0]
	g.busy = 0
	clear(g.lsets)
	g.lsets = g.lsets[:0]
	clear(g.classic)
	g.classic = g.classic[:0]
	clear(g.pins)
	g.pins = g.pins[:0]
	clear(g.done)
	g.done = g.done[:0]
	m.freeGroups = append(m.freeGroups, g)
}

// hold adds one busy unit on the union of the groups of sts.
func (m *Machine) hold(sts []int32) {
	g := m.acquire(sts[0])
	for _, s := range sts[1:] {
		g = m.merge(g, m.acquire(s))
	}
	g.busy++
}

// join merges the group of s into the (busy) group of anchor.
func (m *Machine) join(anchor, s int32) {
	m.merge(m.st[anchor].group, m.acquire(s))
}

// release drops one busy unit from the group of s. If nothing is left in
// flight, the whole group publishes and dissolves; else it publishes what
// it can (advance).
func (m *Machine) release(s int32) {
	g := m.st[s].group
	g.busy--
	if g.busy > 0 {
		m.advance(g)
		return
	}
	for _, i := range g.members {
		m.st[i].group = nil
	}
	if m.bootstrapped {
		for _, i := range g.members {
			m.publish(i)
		}
	}
	m.freeDone = append(m.freeDone, g.done...)
	m.freeGroup(g)
}

func (m *Machine) publish(i int32) {
	if s := &m.st[i]; s.known && (!s.watched || s.vouched() > 0 || s.transient == 0) {
		m.publishValue(i, s.bound())
	}
}

func (m *Machine) publishValue(i int32, v txn.TID) {
	s := &m.st[i]
	if s.hasPublished {
		if v == s.published {
			return
		}
		if v < s.published {
			m.emit(Record{Kind: RecCritical, Code: CodeDecreaseRefused, Storage: s.name, TID: v, Old: s.published,
				Msg: fmt.Sprintf("refusing to publish %s for storage %s: below published %s (an earlier point may be inconsistent)", v.Hex(), s.name, s.published.Hex())})
			return
		}
	}
	r := Record{Kind: RecPublished, Storage: s.name, TID: v, Old: s.published, First: !s.hasPublished}
	s.published = v
	s.hasPublished = true
	s.pubAt = m.now
	m.ctr.Publications++
	m.emit(r)
}

// noteCommit records a commit observed on storage i. started is the input
// seq at which that commit was known to start (tpc_finish sent, classic
// BEGIN), 0 if unknown: only a commit started after an await pin was
// created is certainly later than what the pin waits for.
func (m *Machine) noteCommit(i int32, tid txn.TID, started uint64) {
	s := &m.st[i]
	// Reports can arrive out of TID order (a classic COMMIT is sent after
	// all finishes; replies race across connections): keep the highest.
	if !s.known || tid > s.transient {
		s.transient = tid
	}
	m.markKnown(i)
	s.commits++
	if len(s.waiters) > 0 && started != 0 {
		ws := s.waiters
		keep := ws[:0]
		var done []*pin
		for _, p := range ws {
			if started >= p.seq {
				done = append(done, p)
			} else {
				keep = append(keep, p)
			}
		}
		for k := len(keep); k < len(ws); k++ {
			ws[k] = nil
		}
		s.waiters = keep
		for _, p := range done {
			for k := range p.cs {
				if p.cs[k].st == i && p.cs[k].hi == 0 {
					p.cs[k].hi = tid
				}
			}
			p.waitLeft--
			if p.waitLeft == 0 && !p.released {
				m.releasePin(p, false, true)
			}
		}
	}
}

func (m *Machine) markKnown(i int32) {
	s := &m.st[i]
	if s.known {
		return
	}
	s.known = true
	if s.expected {
		m.missing--
		m.checkBootstrapped()
	}
}

func (m *Machine) checkBootstrapped() {
	if m.bootstrapped || !m.bootRequested || m.missing > 0 || !m.classicReady() {
		return
	}
	if m.cfg.ClassicOnly && !m.bootRestored {
		// The original daemon answers BOOTSTRAPED 1 once its rule is met
		// but moves nothing to the published values before the next
		// COMMIT or ABORT ends (its tests/testTIDServer.py, test_02):
		// a drop-in publishes no earlier. classicEnded starts it.
		if !m.bootArmed {
			m.bootArmed, m.bootSeq = true, m.seq
		}
		return
	}
	m.startPublication()
}

// classicEnded is called when a classic COMMIT or ABORT has been applied.
func (m *Machine) classicEnded() {
	if m.bootArmed && !m.bootstrapped && m.seq != m.bootSeq {
		m.startPublication()
		return
	}
	m.checkBootstrapped()
}

func (m *Machine) startPublication() {
	m.bootstrapped = true
	m.emit(Record{Kind: RecBootstrapped, Msg: "bootstrap complete: publication starts"})
	m.publishAll()
}

// classicReady applies the original daemon's bootstrap rule when the
// classic endpoint is the only source (Config.ClassicOnly): nothing is
// published until every storage configured or known has had a commit of a
// transaction that began after the start (its BEGIN seen by this machine),
// and at least one has. A COMMIT whose BEGIN went to the previous process
// does not count: transactions begun before the start may be in flight on
// storages nothing says are busy.
func (m *Machine) classicReady() bool {
	if !m.cfg.ClassicOnly || m.bootRestored {
		return true
	}
	any := false
	for i := range m.st {
		s := &m.st[i]
		switch {
		case s.fresh:
			any = true
		case s.expected || s.known:
			return false
		}
	}
	return any
}

// publishAll publishes idle storages and advances busy groups.
func (m *Machine) publishAll() {
	for _, i := range m.sorted {
		if g := m.st[i].group; g == nil {
			m.publish(i)
		} else {
			m.advance(g)
		}
	}
}

// Bootstrap gives the last committed TID of storages as read from the
// storages themselves while no transaction could be in flight (before the
// proxy accepts its first client), and whether the previous run stopped
// cleanly. Publication starts once every Config.Storages has a value.
func (m *Machine) Bootstrap(now int64, values []StorageTID, clean bool) {
	m.step(now)
	if !clean {
		m.clean = false
		m.emit(Record{Kind: RecWarning, Code: CodeUncleanStart,
			Msg: "previous run ended uncleanly: the live storages may hold half a transaction; the last coherent point before it is in the status file"})
	}
	for _, v := range values {
		i := m.intern(v.Storage)
		s := &m.st[i]
		if s.hasPublished && v.TID < s.published {
			m.emit(Record{Kind: RecCritical, Code: CodeBootstrapDecrease, Storage: s.name, TID: v.TID, Old: s.published,
				Msg: fmt.Sprintf("bootstrap value %s of storage %s is below its published %s", v.TID.Hex(), s.name, s.published.Hex())})
		}
		if !s.known || v.TID > s.transient {
			s.transient = v.TID
		}
		m.markKnown(i)
	}
	m.bootRequested = true
	if m.bootstrapped {
		// A later bootstrap refreshes what it can.
		m.publishAll()
		return
	}
	m.checkBootstrapped()
}

// Bootstrapped reports whether publication has started.
func (m *Machine) Bootstrapped() bool { return m.bootstrapped }

// ClassicBootstrapped is the classic BOOTSTRAPED answer: publication has
// started or, classic-only, starts when the next transaction ends.
func (m *Machine) ClassicBootstrapped() bool { return m.bootstrapped || m.bootArmed }

// Published returns the published TID of a storage.
func (m *Machine) Published(name string) (txn.TID, bool) {
	i, ok := m.stIdx[name]
	if !ok || !m.st[i].hasPublished {
		return 0, false
	}
	return m.st[i].published, true
}

// AppendPublished appends the published point, sorted by storage id.
func (m *Machine) AppendPublished(dst []StorageTID) []StorageTID {
	for _, i := range m.sorted {
		if s := &m.st[i]; s.hasPublished {
			dst = append(dst, StorageTID{Storage: s.name, TID: s.published})
		}
	}
	return dst
}

// dedupe interns names into m.scratch without duplicates (order kept).
func (m *Machine) internAll(dst []int32, names []string) []int32 {
	for _, n := range names {
		i := m.intern(n)
		if !containsIdx(dst, i) {
			dst = append(dst, i)
		}
	}
	return dst
}

func containsIdx(s []int32, i int32) bool {
	for _, x := range s {
		if x == i {
			return true
		}
	}
	return false
}
