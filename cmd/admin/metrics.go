package admin

import (
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
	"github.com/tidstorage/tidstorage/tracker/classic"
	"github.com/tidstorage/tidstorage/tracker/history"
	"github.com/tidstorage/tidstorage/tracker/statusfile"
	"github.com/tidstorage/tidstorage/zeoproxy"
)

// metric is one exported series family: its descriptor and value type.
// A family labelled by "storage" also carries "label", the storage's
// configured name (Sources.Labels; "" for a storage the configuration does
// not list), so that dashboards need not show repr ids.
type metric struct {
	desc    *prometheus.Desc
	typ     prometheus.ValueType
	storage bool // the first label is "storage", followed by "label"
}

func newMetric(name, help string, typ prometheus.ValueType, labels ...string) metric {
	storage := len(labels) > 0 && labels[0] == "storage"
	if storage {
		labels = append([]string{"storage", "label"}, labels[1:]...)
	}
	return metric{prometheus.NewDesc("tidstorage_"+name, help, labels, nil), typ, storage}
}

func gauge(name, help string, labels ...string) metric {
	return newMetric(name, help, prometheus.GaugeValue, labels...)
}

func counter(name, help string, labels ...string) metric {
	return newMetric(name, help, prometheus.CounterValue, labels...)
}

// Every metric, by source. The names and meanings are listed in
// docs/admin.md; a test checks that the two agree.
var (
	mBuildInfo = gauge("build_info", "Always 1; labels give the tidstorage version and the Go version it was built with.", "version", "goversion")

	// Tracker.
	mBootstrapped   = gauge("bootstrapped", "1 once the tracker publishes (every storage has a known TID), else 0.")
	mCleanStart     = gauge("clean_start", "1 if the previous run stopped cleanly, 0 if the live files may hold half a transaction from its end.")
	mHeld           = gauge("publication_held", "1 while publication is held because the state directory cannot record it (the journal or the running marker cannot be written; /status publication_held says why): the point answered and written stays where it was, ZODB traffic is relayed as usual.")
	mPublishedTID   = gauge("published_tid", "Published (coherent) TID of the storage, as a number (float: exact to about 64 TID units, use /status for the exact value).", "storage")
	mPublishedTime  = gauge("published_tid_timestamp_seconds", "Unix time of the storage's published TID.", "storage")
	mPublishedAge   = gauge("published_tid_age_seconds", "Seconds between now and the time of the storage's published TID (grows while nothing commits).", "storage")
	mTransientTID   = gauge("transient_tid", "Highest TID known committed on the storage (published or not yet).", "storage")
	mPubLag         = gauge("publication_lag_seconds", "Time between the storage's highest TID known committed and its published TID (0 when every known commit is published): how far the point trails the storage's commits.", "storage")
	mStorageBusy    = gauge("storage_busy", "1 while the storage is in a group with something in flight (it publishes when the group drains).", "storage")
	mBlindConns     = gauge("storage_blind_connections", "Open connections to the storage whose traffic cannot be decoded; the storage does not publish while non-zero.", "storage")
	mBlindStorages  = gauge("blind_storages", "Storages with at least one blind connection.")
	mPins           = gauge("pins", "Active pins holding published TIDs back, by kind: partial (partial commit, needs accept-partial), unaccounted (a commit nothing accounted for, needs accept-partial), lost and none (classic transactions), blind.", "kind")
	mGroups         = gauge("busy_groups", "Groups of storages with something in flight.")
	mInflightParts  = gauge("inflight_participations", "Participations (a transaction on one storage connection) known to the tracker: in flight, in doubt, or ended but waiting for the rest of their transaction.")
	mInflightClassi = gauge("inflight_classic_transactions", "Classic protocol transactions between BEGIN and COMMIT/ABORT.")

	// Tracker: ground truth (the storages' own history).
	mWatched          = gauge("storage_watched", "1 if the storage's own history is watched (its published TID passes a commit only once it is accounted for), else 0.", "storage")
	mUnaccHeld        = gauge("storage_unaccounted_held", "Unaccounted commits of the storage holding its publication (waiting for a late report, or until accepted); 0 for a warn-only storage.", "storage")
	mHeldStorages     = gauge("held_storages", "Storages whose publication is held by unaccounted commits.")
	mUnaccTotal       = counter("unaccounted_commits_total", "Unaccounted commits reported: the storage's history has them, no observed participation or classic COMMIT reported them.", "storage")
	mAwaitingHist     = gauge("storage_awaiting_history", "Accounted commits of the storage that wait for its history to reach them before their transactions publish.", "storage")
	mHistCommitsTotal = counter("tracker_history_commits_total", "Commits reported to the tracker by the storages' history.")

	mEvents       = counter("tracker_events_total", "Inputs applied by the tracker.")
	mPublications = counter("tracker_publications_total", "Storage values published (one per storage whose published TID moved).")
	mPartsBegun   = counter("tracker_participations_begun_total", "Participations begun (tpc_begin observed by the proxy).")
	mPartsEnded   = counter("tracker_participations_ended_total", "Participations ended, by outcome (committed, aborted).", "outcome")
	mInDoubt      = counter("tracker_in_doubt_total", "Participations whose tpc_finish was sent and whose connection was lost before the reply.")
	mResolved     = counter("tracker_in_doubt_resolved_total", "In-doubt participations whose outcome was later found.")
	mPartials     = counter("partial_commits_total", "Partial commits detected (a transaction committed on some storages, not on others).")
	mClassicBegun = counter("tracker_classic_begun_total", "Classic transactions begun (BEGIN).")
	mClassicEnded = counter("tracker_classic_ended_total", "Classic transactions ended, by outcome (committed, aborted, lost).", "outcome")
	mWarnings     = counter("tracker_warnings_total", "Unexpected inputs the tracker handled safely (logged at WARN).")
	mCriticals    = counter("tracker_criticals_total", "Inputs that may mean an earlier point was wrong (logged as CRITICAL).")
	mPinsCreated  = counter("tracker_pins_created_total", "Pins created (all kinds).")
	mPinsReleased = counter("tracker_pins_released_total", "Pins released (condition met or accepted).")
	mPinsAccepted = counter("tracker_pins_accepted_total", "Pins released by the operator (accept-partial).")
	mTxnsEnded    = counter("tracker_transactions_ended_total", "Transactions ended (classic ends and drained proxy transactions).")

	// Proxy.
	mProxyConnsOpen  = gauge("proxy_connections_open", "Client connections open through the ZEO proxy.")
	mProxyConnsTotal = counter("proxy_connections_total", "Client connections accepted by the ZEO proxy.")
	mProxyFrames     = counter("proxy_frames_total", "ZEO frames relayed, by direction (client_to_server, server_to_client).", "direction")
	mProxyBytes      = counter("proxy_bytes_total", "Bytes relayed, by direction (client_to_server, server_to_client).", "direction")
	mProxyBegins     = counter("proxy_tpc_begins_total", "tpc_begin calls observed.")
	mProxyCommits    = counter("proxy_tpc_commits_total", "tpc_finish replies observed (committed participations).")
	mProxyAborts     = counter("proxy_tpc_aborts_total", "tpc_abort calls observed.")
	mProxyVotesFail  = counter("proxy_tpc_votes_failed_total", "Votes answered with an error (usually a conflict).")
	mProxyInDoubt    = counter("proxy_tpc_in_doubt_total", "Participations left in doubt (tpc_finish sent, reply never seen).")
	mProxyResolved   = counter("proxy_in_doubt_resolved_total", "In-doubt participations resolved through the storage, by outcome (committed, aborted).", "outcome")
	mProxyDecodeErrs = counter("proxy_decode_errors_total", "Connections whose traffic could not be decoded (the storage turns blind).")
	mProxyBlindClose = counter("proxy_blind_closed_total", "Blind connections closed after the zeo block's blind_timeout.")
	// The relay's limits (limits block), each counted when it refuses.
	mProxyUnregistered = gauge("proxy_connections_unregistered", "Client connections open whose register the ZEO server has not accepted yet (closed after limits.register_timeout).")
	mProxyRefused      = counter("proxy_connections_refused_total", "Client connections closed at once because limits.max_zeo_connections were open.")
	mProxyRegTimeouts  = counter("proxy_register_timeouts_total", "Client connections closed because they did not register within limits.register_timeout.")
	mProxyUndecoded    = counter("proxy_frames_undecoded_total", "Frames the relay had to decode and relayed undecoded (their storage turns blind), by reason: pre_register_limit (over limits.max_pre_register_frame before register), decode_limit (over limits.max_frame_size), decode_budget (limits.decode_budget spent).", "reason")
	mProxyTLSOK        = counter("proxy_tls_handshakes_total", "TLS handshakes completed by the ZEO proxy, by side (client: a ZODB client with a zeo block's tls; upstream: the ZEO server with upstream_tls).", "side")
	mProxyTLSRefused   = counter("proxy_tls_refused_total", "TLS handshakes refused or failed, by side (client, upstream) and reason (not_tls, timeout, no_certificate, bad_certificate, peer_refused, closed, other); nothing reached the ZEO server.", "side", "reason")

	// TLS files.
	mCertExpiry = gauge("certificate_expiry_timestamp_seconds", "Unix time at which a loaded certificate file stops being valid (the earliest end of the certificates in it), by TLS block (zeo.NAME.tls, zeo.NAME.upstream_tls, fleet.tls, tracker.tls) and attribute (cert_file, client_ca_file, ca_file).", "block", "attribute")

	// Classic endpoint.
	mClassicConnsActive = gauge("classic_connections_active", "Connections being served by the classic endpoint.")
	mClassicConns       = counter("classic_connections_total", "Connections to the classic endpoint, by result (accepted, refused: limit reached, denied: not in the allow-list).", "result")
	mClassicCommands    = counter("classic_commands_total", "Complete classic commands, by command (begin, abort, commit, dump, bootstraped, quit).", "command")
	mClassicProtoErrs   = counter("classic_protocol_errors_total", "Classic connections closed for breaking the protocol.")
	mClassicTorn        = counter("classic_torn_commands_total", "Classic commands discarded because the stream ended inside them.")
	mClassicClosed      = counter("classic_connections_closed_total", "Classic connections closed by the server, by reason (idle: no command within idle_timeout; evicted: the idlest, to admit a new one at max_connections). Connections that reported a transaction are never closed either way.", "reason")

	// Status file.
	mStatusLines     = counter("status_file_lines_total", "Lines written to the status file.")
	mStatusErrors    = counter("status_file_write_errors_total", "Failed status file writes (the message is in /status and the log).")
	mStatusBytes     = counter("status_file_bytes_total", "Bytes written to the status file (whole lines, fsynced).")
	mStatusEpochs    = counter("status_file_epochs_total", "New status file epochs started by this run (the storages went back; the old file is kept aside).")
	mStatusBroken    = gauge("status_file_broken", "1 if appending to the status file stopped until restart (a torn line could not be cut back).")
	mStatusLastWrite = gauge("status_file_last_write_timestamp_seconds", "Unix time of the last status file line (absent before the first).")

	// History watchers.
	mHistConnected  = gauge("history_connected", "1 while the storage's history watcher is registered on its ZEO server, else 0.", "storage")
	mHistLag        = gauge("history_lag_seconds", "Time between the newest TID the storage's server reported and the last commit the watcher handed to the tracker (0 when caught up).", "storage")
	mHistReconnects = counter("history_reconnects_total", "Reconnection attempts of the storage's history watcher after a failure or a lost connection.", "storage")
	mHistDelivered  = counter("history_commits_total", "Commits the storage's history watcher handed to the tracker, by source (invalidation, iterator).", "storage", "source")

	// Journal.
	mJournalBytes     = gauge("journal_bytes", "Size of the tracker's journal file.")
	mJournalRecords   = counter("journal_records_total", "Inputs appended to the journal by this run.")
	mJournalRotations = counter("journal_rotations_total", "Times the journal restarted from an image of the tracker (at start, past its rotation size, and to recover after a failure).")
	mJournalErrors    = counter("journal_errors_total", "Failed journal appends or rotations (journaling stops, and publication is held, until a rotation succeeds).")
	mJournalBroken    = gauge("journal_broken", "1 while journaling is stopped after a failure (publication is held until a rotation succeeds, tried every second), else 0.")
)

var trackerMetrics = []metric{
	mBuildInfo, mBootstrapped, mCleanStart, mHeld, mPublishedTID, mPublishedTime, mPublishedAge, mTransientTID, mPubLag,
	mStorageBusy, mBlindConns, mBlindStorages, mPins, mGroups, mInflightParts, mInflightClassi,
	mEvents, mPublications, mPartsBegun, mPartsEnded, mInDoubt, mResolved, mPartials, mClassicBegun,
	mClassicEnded, mWarnings, mCriticals, mPinsCreated, mPinsReleased, mPinsAccepted, mTxnsEnded,
	mWatched, mUnaccHeld, mHeldStorages, mUnaccTotal, mAwaitingHist, mHistCommitsTotal,
}

var proxyMetrics = []metric{
	mProxyConnsOpen, mProxyConnsTotal, mProxyFrames, mProxyBytes, mProxyBegins, mProxyCommits, mProxyAborts,
	mProxyVotesFail, mProxyInDoubt, mProxyResolved, mProxyDecodeErrs, mProxyBlindClose, mProxyTLSOK, mProxyTLSRefused,
	mProxyUnregistered, mProxyRefused, mProxyRegTimeouts, mProxyUndecoded,
}

var classicMetrics = []metric{mClassicConnsActive, mClassicConns, mClassicCommands, mClassicProtoErrs, mClassicTorn, mClassicClosed}

var statusFileMetrics = []metric{mStatusLines, mStatusBytes, mStatusErrors, mStatusEpochs, mStatusBroken, mStatusLastWrite}

var historyMetrics = []metric{mHistConnected, mHistLag, mHistReconnects, mHistDelivered}

var journalMetrics = []metric{mJournalBytes, mJournalRecords, mJournalRotations, mJournalErrors, mJournalBroken}

// pinKinds are exported even at zero, so that an alert on
// tidstorage_pins{kind="partial"} > 0 has a series to watch.
var pinKinds = []tracker.PinKind{tracker.PinPartial, tracker.PinUnaccounted, tracker.PinLost, tracker.PinNone, tracker.PinBlind}

// collector reads the sources at scrape time.
type collector struct{ src *Sources }

func (c collector) metrics() []metric {
	ms := append([]metric(nil), trackerMetrics...)
	if c.src.Proxy != nil {
		ms = append(ms, proxyMetrics...)
	}
	if c.src.Classic != nil {
		ms = append(ms, classicMetrics...)
	}
	if c.src.StatusFile != nil {
		ms = append(ms, statusFileMetrics...)
	}
	if c.src.Watchers != nil {
		ms = append(ms, historyMetrics...)
	}
	if c.src.Journal != nil {
		ms = append(ms, journalMetrics...)
	}
	if c.src.Certificates != nil {
		ms = append(ms, mCertExpiry)
	}
	ms = append(ms, c.fleetMetrics()...)
	if c.src.Archive != nil {
		ms = append(ms, archiveMetrics...)
	}
	return ms
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics() {
		ch <- m.desc
	}
}

// emitter sends one sample of a metric; labels gives each storage's label.
type emitter struct {
	ch     chan<- prometheus.Metric
	labels map[string]string
}

func (e emitter) emit(m metric, v float64, labels ...string) {
	if m.storage {
		labels = append([]string{labels[0], e.labels[labels[0]]}, labels[1:]...)
	}
	e.ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, labels...)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	e := emitter{ch: ch, labels: c.src.Labels}
	e.emit(mBuildInfo, 1, c.src.Version, runtime.Version())
	st := c.src.Tracker.Status()
	e.collectPoint(&st, c.src.now())
	e.collectGroundTruth(&st)
	e.collectCounters(&st.Counters)
	if c.src.Proxy != nil {
		e.collectProxy(c.src.Proxy())
	}
	if c.src.Classic != nil {
		e.collectClassic(c.src.Classic())
	}
	if c.src.StatusFile != nil {
		e.collectStatusFile(c.src.StatusFile())
	}
	if c.src.Watchers != nil {
		e.collectHistory(c.src.Watchers())
	}
	if c.src.Journal != nil {
		e.collectJournal(c.src.Journal())
	}
	if c.src.Certificates != nil {
		for _, x := range c.src.Certificates() {
			e.emit(mCertExpiry, float64(x.NotAfter.Unix()), x.Block, x.Attr)
		}
	}
	e.collectFleet(c.src)
	if c.src.Archive != nil {
		e.collectArchive(c.src.Archive())
	}
}

// collectPoint: the published point, per storage, and what holds it.
func (e emitter) collectPoint(st *tracker.Status, now time.Time) {
	e.emit(mBootstrapped, b2f(st.Bootstrapped))
	e.emit(mCleanStart, b2f(st.CleanStart))
	e.emit(mHeld, b2f(st.Held != ""))
	blind := 0
	for _, s := range st.Storages {
		if s.HasPublished {
			t := txn.TID(s.Published).Time()
			e.emit(mPublishedTID, float64(s.Published), s.ID)
			if s.Published != 0 { // an empty storage: TID 0 has no time (1900) nor age
				e.emit(mPublishedTime, float64(t.UnixNano())/1e9, s.ID)
				e.emit(mPublishedAge, now.Sub(t).Seconds(), s.ID)
			}
		}
		if s.Known {
			e.emit(mTransientTID, float64(s.Transient), s.ID)
			if s.HasPublished {
				e.emit(mPubLag, publicationLag(s.Published, s.Transient).Seconds(), s.ID)
			}
		}
		e.emit(mStorageBusy, b2f(s.Busy), s.ID)
		e.emit(mBlindConns, float64(s.Blind), s.ID)
		if s.Blind > 0 {
			blind++
		}
	}
	e.emit(mBlindStorages, float64(blind))
	pins := map[tracker.PinKind]int{}
	for _, p := range st.Pins {
		pins[p.Kind]++
	}
	for _, k := range pinKinds {
		e.emit(mPins, float64(pins[k]), k.String())
	}
	e.emit(mGroups, float64(len(st.Groups)))
	e.emit(mInflightParts, float64(len(st.Parts)))
	e.emit(mInflightClassi, float64(len(st.Classic)))
}

// publicationLag is the time between a storage's transient and published
// TIDs; 0 when the published one is the newest known (or TID 0 stands for
// an empty storage).
func publicationLag(published, transient txn.TID) time.Duration {
	if transient <= published || published == 0 {
		return 0
	}
	return transient.Time().Sub(published.Time())
}

// collectGroundTruth: watched storages and their unaccounted commits.
func (e emitter) collectGroundTruth(st *tracker.Status) {
	held := 0
	for _, s := range st.Storages {
		e.emit(mWatched, b2f(s.Watched), s.ID)
		if !s.Watched {
			continue
		}
		n := 0
		if !s.WarnOnly {
			n = len(s.Unaccounted)
		}
		if n > 0 {
			held++
		}
		e.emit(mUnaccHeld, float64(n), s.ID)
		e.emit(mUnaccTotal, float64(s.UnaccountedTotal), s.ID)
		e.emit(mAwaitingHist, float64(s.AwaitingHistory), s.ID)
	}
	e.emit(mHeldStorages, float64(held))
}

func (e emitter) collectCounters(k *tracker.Counters) {
	e.emit(mEvents, float64(k.Events))
	e.emit(mPublications, float64(k.Publications))
	e.emit(mPartsBegun, float64(k.PartsBegun))
	e.emit(mPartsEnded, float64(k.PartsCommitted), "committed")
	e.emit(mPartsEnded, float64(k.PartsAborted), "aborted")
	e.emit(mInDoubt, float64(k.InDoubt))
	e.emit(mResolved, float64(k.Resolved))
	e.emit(mPartials, float64(k.Partials))
	e.emit(mClassicBegun, float64(k.ClassicBegun))
	e.emit(mClassicEnded, float64(k.ClassicCommitted), "committed")
	e.emit(mClassicEnded, float64(k.ClassicAborted), "aborted")
	e.emit(mClassicEnded, float64(k.ClassicLost), "lost")
	e.emit(mWarnings, float64(k.Warnings))
	e.emit(mCriticals, float64(k.Criticals))
	e.emit(mPinsCreated, float64(k.PinsCreated))
	e.emit(mPinsReleased, float64(k.PinsReleased))
	e.emit(mPinsAccepted, float64(k.PinsAccepted))
	e.emit(mTxnsEnded, float64(k.TransactionsEnded))
	e.emit(mHistCommitsTotal, float64(k.HistoryCommits))
}

func (e emitter) collectProxy(p zeoproxy.MetricsSnapshot) {
	e.emit(mProxyConnsOpen, float64(p.ConnsOpen))
	e.emit(mProxyConnsTotal, float64(p.ConnsTotal))
	e.emit(mProxyFrames, float64(p.FramesC2S), "client_to_server")
	e.emit(mProxyFrames, float64(p.FramesS2C), "server_to_client")
	e.emit(mProxyBytes, float64(p.BytesC2S), "client_to_server")
	e.emit(mProxyBytes, float64(p.BytesS2C), "server_to_client")
	e.emit(mProxyBegins, float64(p.Begins))
	e.emit(mProxyCommits, float64(p.Commits))
	e.emit(mProxyAborts, float64(p.Aborts))
	e.emit(mProxyVotesFail, float64(p.VotesFailed))
	e.emit(mProxyInDoubt, float64(p.InDoubt))
	e.emit(mProxyResolved, float64(p.ResolvedCommitted), "committed")
	e.emit(mProxyResolved, float64(p.ResolvedAborted), "aborted")
	e.emit(mProxyDecodeErrs, float64(p.DecodeErrors))
	e.emit(mProxyBlindClose, float64(p.BlindClosed))
	e.emit(mProxyUnregistered, float64(p.Unregistered))
	e.emit(mProxyRefused, float64(p.ConnsRefused))
	e.emit(mProxyRegTimeouts, float64(p.UnregisteredClosed))
	e.emit(mProxyUndecoded, float64(p.SkippedPreRegister), "pre_register_limit")
	e.emit(mProxyUndecoded, float64(p.SkippedLimit), "decode_limit")
	e.emit(mProxyUndecoded, float64(p.SkippedBudget), "decode_budget")
	e.emit(mProxyTLSOK, float64(p.TLSHandshakesClient), zeoproxy.SideClient)
	e.emit(mProxyTLSOK, float64(p.TLSHandshakesUpstream), zeoproxy.SideUpstream)
	for _, r := range p.TLSRefused {
		e.emit(mProxyTLSRefused, float64(r.Count), r.Side, r.Reason)
	}
}

func (e emitter) collectClassic(s classic.Stats) {
	e.emit(mClassicConnsActive, float64(s.ConnectionsActive))
	e.emit(mClassicConns, float64(s.ConnectionsAccepted), "accepted")
	e.emit(mClassicConns, float64(s.ConnectionsRefused), "refused")
	e.emit(mClassicConns, float64(s.ConnectionsDenied), "denied")
	for _, cmd := range []struct {
		name string
		n    uint64
	}{{"begin", s.Commands.Begin}, {"abort", s.Commands.Abort}, {"commit", s.Commands.Commit},
		{"dump", s.Commands.Dump}, {"bootstraped", s.Commands.Bootstraped}, {"quit", s.Commands.Quit}} {
		e.emit(mClassicCommands, float64(cmd.n), cmd.name)
	}
	e.emit(mClassicProtoErrs, float64(s.ProtocolErrors))
	e.emit(mClassicTorn, float64(s.TornCommands))
	e.emit(mClassicClosed, float64(s.ConnectionsIdleClosed), "idle")
	e.emit(mClassicClosed, float64(s.ConnectionsEvicted), "evicted")
}

func (e emitter) collectStatusFile(s statusfile.Stats) {
	e.emit(mStatusLines, float64(s.Lines))
	e.emit(mStatusBytes, float64(s.Bytes))
	e.emit(mStatusErrors, float64(s.Errors))
	e.emit(mStatusEpochs, float64(s.Epochs))
	e.emit(mStatusBroken, b2f(s.Broken != ""))
	if !s.LastWrite.IsZero() {
		e.emit(mStatusLastWrite, float64(s.LastWrite.UnixNano())/1e9)
	}
}

func (e emitter) collectHistory(ws map[string]history.Status) {
	for id, w := range ws {
		e.emit(mHistConnected, b2f(w.Connected), id)
		e.emit(mHistLag, w.Lag.Seconds(), id)
		e.emit(mHistReconnects, float64(w.Reconnects), id)
		e.emit(mHistDelivered, float64(w.Delivered-w.FromIterator), id, "invalidation")
		e.emit(mHistDelivered, float64(w.FromIterator), id, "iterator")
	}
}

func (e emitter) collectJournal(j tracker.JournalStats) {
	e.emit(mJournalBytes, float64(j.Size))
	e.emit(mJournalRecords, float64(j.Records))
	e.emit(mJournalRotations, float64(j.Rotations))
	e.emit(mJournalErrors, float64(j.Errors))
	e.emit(mJournalBroken, b2f(j.Broken != ""))
}

// newRegistry returns a registry of its own (not the global one, so that
// tests and several handlers in one process do not collide) with the
// tidstorage collector and the Go and process collectors.
func newRegistry(src *Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
