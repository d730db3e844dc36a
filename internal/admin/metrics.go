package admin

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tidstorage/tidstorage/internal/txn"
	"github.com/tidstorage/tidstorage/tracker"
)

// metric is one exported series family: its descriptor and value type.
type metric struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType
}

func newMetric(name, help string, typ prometheus.ValueType, labels ...string) metric {
	return metric{prometheus.NewDesc("tidstorage_"+name, help, labels, nil), typ}
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
	mPublishedTID   = gauge("published_tid", "Published (coherent) TID of the storage, as a number (float: exact to about 64 TID units, use /status for the exact value).", "storage")
	mPublishedTime  = gauge("published_tid_timestamp_seconds", "Unix time of the storage's published TID.", "storage")
	mPublishedAge   = gauge("published_tid_age_seconds", "Seconds between now and the time of the storage's published TID (grows while nothing commits).", "storage")
	mTransientTID   = gauge("transient_tid", "Highest TID known committed on the storage (published or not yet).", "storage")
	mStorageBusy    = gauge("storage_busy", "1 while the storage is in a group with something in flight (it publishes when the group drains).", "storage")
	mBlindConns     = gauge("storage_blind_connections", "Open connections to the storage whose traffic cannot be decoded; the storage does not publish while non-zero.", "storage")
	mBlindStorages  = gauge("blind_storages", "Storages with at least one blind connection.")
	mPins           = gauge("pins", "Active pins holding published TIDs back, by kind: partial (partial commit, needs accept-partial), lost and none (classic transactions), blind.", "kind")
	mGroups         = gauge("busy_groups", "Groups of storages with something in flight.")
	mInflightParts  = gauge("inflight_participations", "Participations (a transaction on one storage connection) known to the tracker: in flight, in doubt, or ended but waiting for the rest of their transaction.")
	mInflightClassi = gauge("inflight_classic_transactions", "Classic protocol transactions between BEGIN and COMMIT/ABORT.")

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

	// Classic endpoint.
	mClassicConnsActive = gauge("classic_connections_active", "Connections being served by the classic endpoint.")
	mClassicConns       = counter("classic_connections_total", "Connections to the classic endpoint, by result (accepted, refused: limit reached, denied: not in the allow-list).", "result")
	mClassicCommands    = counter("classic_commands_total", "Complete classic commands, by command (begin, abort, commit, dump, bootstraped, quit).", "command")
	mClassicProtoErrs   = counter("classic_protocol_errors_total", "Classic connections closed for breaking the protocol.")
	mClassicTorn        = counter("classic_torn_commands_total", "Classic commands discarded because the stream ended inside them.")

	// Status file.
	mStatusLines     = counter("status_file_lines_total", "Lines written to the status file.")
	mStatusErrors    = counter("status_file_write_errors_total", "Failed status file writes (the message is in /status and the log).")
	mStatusBytes     = counter("status_file_bytes_total", "Bytes written to the status file (whole lines, fsynced).")
	mStatusEpochs    = counter("status_file_epochs_total", "New status file epochs started by this run (the storages went back; the old file is kept aside).")
	mStatusBroken    = gauge("status_file_broken", "1 if appending to the status file stopped until restart (a torn line could not be cut back).")
	mStatusLastWrite = gauge("status_file_last_write_timestamp_seconds", "Unix time of the last status file line (absent before the first).")
)

var trackerMetrics = []metric{
	mBuildInfo, mBootstrapped, mCleanStart, mPublishedTID, mPublishedTime, mPublishedAge, mTransientTID,
	mStorageBusy, mBlindConns, mBlindStorages, mPins, mGroups, mInflightParts, mInflightClassi,
	mEvents, mPublications, mPartsBegun, mPartsEnded, mInDoubt, mResolved, mPartials, mClassicBegun,
	mClassicEnded, mWarnings, mCriticals, mPinsCreated, mPinsReleased, mPinsAccepted, mTxnsEnded,
}

var proxyMetrics = []metric{
	mProxyConnsOpen, mProxyConnsTotal, mProxyFrames, mProxyBytes, mProxyBegins, mProxyCommits, mProxyAborts,
	mProxyVotesFail, mProxyInDoubt, mProxyResolved, mProxyDecodeErrs,
}

var classicMetrics = []metric{mClassicConnsActive, mClassicConns, mClassicCommands, mClassicProtoErrs, mClassicTorn}

var statusFileMetrics = []metric{mStatusLines, mStatusBytes, mStatusErrors, mStatusEpochs, mStatusBroken, mStatusLastWrite}

// pinKinds are exported even at zero, so that an alert on
// tidstorage_pins{kind="partial"} > 0 has a series to watch.
var pinKinds = []tracker.PinKind{tracker.PinPartial, tracker.PinLost, tracker.PinNone, tracker.PinBlind}

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
	return ms
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.metrics() {
		ch <- m.desc
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(m metric, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, labels...)
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	emit(mBuildInfo, 1, c.src.Version, runtime.Version())

	now := c.src.now()
	st := c.src.Tracker.Status()
	emit(mBootstrapped, b2f(st.Bootstrapped))
	emit(mCleanStart, b2f(st.CleanStart))
	blind := 0
	for _, s := range st.Storages {
		if s.HasPublished {
			t := txn.TID(s.Published).Time()
			emit(mPublishedTID, float64(s.Published), s.ID)
			emit(mPublishedTime, float64(t.UnixNano())/1e9, s.ID)
			emit(mPublishedAge, now.Sub(t).Seconds(), s.ID)
		}
		if s.Known {
			emit(mTransientTID, float64(s.Transient), s.ID)
		}
		emit(mStorageBusy, b2f(s.Busy), s.ID)
		emit(mBlindConns, float64(s.Blind), s.ID)
		if s.Blind > 0 {
			blind++
		}
	}
	emit(mBlindStorages, float64(blind))
	pins := map[tracker.PinKind]int{}
	for _, p := range st.Pins {
		pins[p.Kind]++
	}
	for _, k := range pinKinds {
		emit(mPins, float64(pins[k]), k.String())
	}
	emit(mGroups, float64(len(st.Groups)))
	emit(mInflightParts, float64(len(st.Parts)))
	emit(mInflightClassi, float64(len(st.Classic)))

	k := st.Counters
	emit(mEvents, float64(k.Events))
	emit(mPublications, float64(k.Publications))
	emit(mPartsBegun, float64(k.PartsBegun))
	emit(mPartsEnded, float64(k.PartsCommitted), "committed")
	emit(mPartsEnded, float64(k.PartsAborted), "aborted")
	emit(mInDoubt, float64(k.InDoubt))
	emit(mResolved, float64(k.Resolved))
	emit(mPartials, float64(k.Partials))
	emit(mClassicBegun, float64(k.ClassicBegun))
	emit(mClassicEnded, float64(k.ClassicCommitted), "committed")
	emit(mClassicEnded, float64(k.ClassicAborted), "aborted")
	emit(mClassicEnded, float64(k.ClassicLost), "lost")
	emit(mWarnings, float64(k.Warnings))
	emit(mCriticals, float64(k.Criticals))
	emit(mPinsCreated, float64(k.PinsCreated))
	emit(mPinsReleased, float64(k.PinsReleased))
	emit(mPinsAccepted, float64(k.PinsAccepted))
	emit(mTxnsEnded, float64(k.TransactionsEnded))

	if c.src.Proxy != nil {
		p := c.src.Proxy()
		emit(mProxyConnsOpen, float64(p.ConnsOpen))
		emit(mProxyConnsTotal, float64(p.ConnsTotal))
		emit(mProxyFrames, float64(p.FramesC2S), "client_to_server")
		emit(mProxyFrames, float64(p.FramesS2C), "server_to_client")
		emit(mProxyBytes, float64(p.BytesC2S), "client_to_server")
		emit(mProxyBytes, float64(p.BytesS2C), "server_to_client")
		emit(mProxyBegins, float64(p.Begins))
		emit(mProxyCommits, float64(p.Commits))
		emit(mProxyAborts, float64(p.Aborts))
		emit(mProxyVotesFail, float64(p.VotesFailed))
		emit(mProxyInDoubt, float64(p.InDoubt))
		emit(mProxyResolved, float64(p.ResolvedCommitted), "committed")
		emit(mProxyResolved, float64(p.ResolvedAborted), "aborted")
		emit(mProxyDecodeErrs, float64(p.DecodeErrors))
	}
	if c.src.Classic != nil {
		s := c.src.Classic()
		emit(mClassicConnsActive, float64(s.ConnectionsActive))
		emit(mClassicConns, float64(s.ConnectionsAccepted), "accepted")
		emit(mClassicConns, float64(s.ConnectionsRefused), "refused")
		emit(mClassicConns, float64(s.ConnectionsDenied), "denied")
		for _, cmd := range []struct {
			name string
			n    uint64
		}{{"begin", s.Commands.Begin}, {"abort", s.Commands.Abort}, {"commit", s.Commands.Commit},
			{"dump", s.Commands.Dump}, {"bootstraped", s.Commands.Bootstraped}, {"quit", s.Commands.Quit}} {
			emit(mClassicCommands, float64(cmd.n), cmd.name)
		}
		emit(mClassicProtoErrs, float64(s.ProtocolErrors))
		emit(mClassicTorn, float64(s.TornCommands))
	}
	if c.src.StatusFile != nil {
		s := c.src.StatusFile()
		emit(mStatusLines, float64(s.Lines))
		emit(mStatusBytes, float64(s.Bytes))
		emit(mStatusErrors, float64(s.Errors))
		emit(mStatusEpochs, float64(s.Epochs))
		broken := 0.0
		if s.Broken != "" {
			broken = 1
		}
		emit(mStatusBroken, broken)
		if !s.LastWrite.IsZero() {
			emit(mStatusLastWrite, float64(s.LastWrite.UnixNano())/1e9)
		}
	}
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
