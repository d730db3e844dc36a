package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tidstorage/tidstorage/fleet"
	"github.com/tidstorage/tidstorage/internal/statusdoc"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tidstorage/tidstorage/tracker"
)

// NewHandler returns the admin endpoint. It reads src on every request and
// starts no goroutine. src.Tracker is required. Every request must name the
// endpoint in its Host header (421 otherwise); POSTs need src.Token
// (security.go).
func NewHandler(src Sources, log hclog.Logger) http.Handler {
	if src.Tracker == nil {
		panic("admin: Sources.Tracker is nil")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	h := &handler{src: &src, log: log}
	reg := newRegistry(h.src)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: promLogger{log}, Registry: reg, EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /status", h.status)
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /fleet", h.fleet)
	// A web page the operator has open could POST to a loopback address;
	// the browser's Sec-Fetch-Site/Origin headers let us refuse that. Tools
	// (curl, the CLI) send neither and pass.
	mux.Handle("POST /accept-partial", http.NewCrossOriginProtection().Handler(http.HandlerFunc(h.acceptPartial)))
	mux.Handle("POST /fleet/retire", http.NewCrossOriginProtection().Handler(http.HandlerFunc(h.retire)))
	mux.HandleFunc("GET /{$}", h.page) // the status page for browsers, the list below for others
	return newGuard(src.Token, src.AllowedHosts, mux)
}

type handler struct {
	src *Sources
	log hclog.Logger
}

// promLogger adapts hclog to promhttp's error log.
type promLogger struct{ log hclog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error("metrics: " + strings.TrimSpace(fmt.Sprintln(v...)))
}

func (h *handler) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, `tidstorage admin endpoint
  GET  /metrics                 Prometheus metrics
  GET  /status                  JSON status document
  GET  /healthz                 200 while the process serves (503 if the tracker failed)
  GET  /readyz                  200 once the tracker is bootstrapped
  GET  /fleet                   JSON: a tracker's sidecars, or a sidecar's link (fleet roles)
  GET  /                        this list; a browser (Accept: text/html) gets the status page
  POST /accept-partial?pin=N    accept a partial commit as the new baseline, or unaccounted commits once decided
  POST /fleet/retire?name=NAME  forget a sidecar gone for good (fleet tracker)

POST needs Authorization: Bearer <token> (admin { token_file }); without it
/status and /fleet are redacted. /metrics, /healthz and /readyz need nothing.
`)
}

// status serves the document; without the credential what identifies
// clients, users, transactions and files is replaced by Redacted.
func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	doc := BuildStatus(h.src)
	if !authorized(r) {
		doc.Redact()
	}
	writeJSON(w, http.StatusOK, doc)
}

// healthz says the process is alive and serving HTTP; it fails only when
// the tracker stopped after an internal failure (a restart does help then),
// not while the daemon is merely waiting for its bootstrap or holding a pin
// (restarting would not help).
func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if b := h.src.Tracker.Status().Broken; b != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "tracker failed, publication stopped (traffic still relayed): %s\n", b)
		return
	}
	fmt.Fprintln(w, "ok")
}

// readyz says the tracker publishes: 503 until its bootstrap. Pins do not
// make it fail: the published point stays coherent (only older), and
// partial commits are alerts (tidstorage_pins{kind="partial"} > 0), not a
// reason to stop sending traffic.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !h.src.Tracker.Status().Bootstrapped {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready: not bootstrapped (waiting for a known TID of every storage)")
		return
	}
	fmt.Fprintln(w, "ready")
}

func (h *handler) acceptPartial(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("pin")
	if q == "" {
		writeJSON(w, http.StatusBadRequest, statusdoc.ErrorDoc{Error: "missing pin parameter: POST /accept-partial?pin=N"})
		return
	}
	id, err := strconv.ParseUint(q, 10, 64)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, statusdoc.ErrorDoc{Error: fmt.Sprintf("pin %q is not a pin number", q)})
		return
	}
	before := BuildStatus(h.src)
	pin, known := before.Pin(id)
	accept := h.src.Tracker.AcceptPartial
	if h.src.Accept != nil {
		accept = h.src.Accept
	}
	err = accept(id)
	switch {
	case errors.Is(err, tracker.ErrNoSuchPin):
		writeJSON(w, http.StatusNotFound, statusdoc.ErrorDoc{Error: fmt.Sprintf("no active pin %d (already released, or never existed)", id)})
		return
	case errors.Is(err, tracker.ErrBlindPin):
		writeJSON(w, http.StatusConflict, statusdoc.ErrorDoc{Error: fmt.Sprintf("pin %d is a blind storage: it ends when its undecodable connections close, it cannot be accepted", id)})
		return
	case errors.Is(err, fleet.ErrSidecarsBehind):
		h.log.Warn("accept-partial refused: a sidecar is behind", "pin", id, "error", err)
		writeJSON(w, http.StatusConflict, statusdoc.ErrorDoc{Error: err.Error()})
		return
	case errors.Is(err, tracker.ErrHistoryWentBack):
		h.log.Error("accept-partial refused: a storage's history went back", "pin", id, "error", err)
		writeJSON(w, http.StatusConflict, statusdoc.ErrorDoc{Error: err.Error()})
		return
	case err != nil:
		h.log.Error("accept-partial failed", "pin", id, "error", err)
		writeJSON(w, http.StatusInternalServerError, statusdoc.ErrorDoc{Error: err.Error()})
		return
	}
	if !known {
		// Created between the snapshot and the call: report what we can.
		pin = statusdoc.PinDoc{ID: id}
	}
	msg := "operator accepted a pin: its storages' live state is the new baseline"
	args := []any{"pin", id, "kind", pin.Kind, "storages", strings.Join(pin.Storages, ", "), "reason", pin.Reason}
	if pin.Upto != nil {
		msg = "operator accepted a pin: the storage's unaccounted commits it covers count as accounted for"
		args = append(args, "upto", pin.Upto.Hex)
	}
	h.log.Warn(msg, append(args, "remote", r.RemoteAddr)...)
	after := BuildStatus(h.src)
	res := statusdoc.AcceptResult{Accepted: true, Pin: pin, Published: []statusdoc.HeldDoc{}}
	for _, s := range pin.Storages {
		hd := statusdoc.HeldDoc{Storage: s}
		for _, sd := range after.Storages {
			if sd.ID == s {
				hd.Published = sd.Published
			}
		}
		res.Published = append(res.Published, hd)
	}
	writeJSON(w, http.StatusOK, res)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	// No HTML escaping: the document is JSON for tools, and Redacted reads
	// as written.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		http.Error(w, "admin: encoding the reply: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

// retire forgets a sidecar gone for good (fleet tracker).
func (h *handler) retire(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	switch {
	case h.src.FleetRetire == nil:
		writeJSON(w, http.StatusNotFound, statusdoc.ErrorDoc{Error: "this daemon is not a fleet tracker: nothing to retire"})
		return
	case name == "":
		writeJSON(w, http.StatusBadRequest, statusdoc.ErrorDoc{Error: "missing name parameter: POST /fleet/retire?name=NAME"})
		return
	}
	if err := h.src.FleetRetire(name); err != nil {
		code := http.StatusNotFound
		if errors.Is(err, fleet.ErrConnected) {
			code = http.StatusConflict
		}
		writeJSON(w, code, statusdoc.ErrorDoc{Error: err.Error()})
		return
	}
	h.log.Warn("operator retired a sidecar", "source", name, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"retired": name})
}
