package admin

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/tidstorage/tidstorage/internal/statusdoc"
)

// The status page (GET / from a browser): the site's state at a glance,
// one small HTML document with no external asset (inline CSS and SVG, no
// script; its Content-Security-Policy forbids loading anything). It shows
// what /status and /fleet show, redacted the same way without the token:
// it is built from those documents after Redact.

// BackupRun is the last run of a backup command, read from the backup
// metrics file (docs/admin.md, "Backup freshness").
type BackupRun struct {
	Command              string
	LastRun, LastSuccess time.Time // zero if unknown
	OK                   bool
}

// pageData is what the template renders.
type pageData struct {
	Title, Version, Now, Where string
	Role                       string
	Bootstrapped               bool
	Redacted                   bool
	Failure                    string
	Storages                   []pageStorage
	Partial, Unaccounted       []pagePin
	OtherPins                  []pagePin
	InFlight                   string
	Watchers                   []pageWatcher
	Fleet                      *statusdoc.FleetDoc
	FleetRows                  []pageFleetRow
	Backups                    []pageBackup
	BackupsError               string
	Archive                    *pageArchive
	Problems                   int
}

type pageStorage struct {
	Label, ID, TID, Time, Age, Lag, State string
	Bad                                   bool
	Spark                                 template.HTML
}

type pagePin struct {
	ID                     uint64
	Kind, Storages, Reason string
	Since, Command         string
}

type pageWatcher struct {
	Storage, State, Since, Lag, Error string
	Reconnects                        uint64
	Bad                               bool
}

type pageFleetRow struct {
	Name, State, Detail string
	Bad                 bool
}

type pageArchive struct {
	State, LastPoint, Lag string
	Errors                uint64
	Bad                   bool
}

type pageBackup struct {
	Command, Success, Last string
	Bad                    bool
}

// page serves the status page to browsers; other clients (curl, probes)
// get the endpoint's list as text.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	if !strings.Contains(r.Header.Get("Accept"), "text/html") {
		h.index(w, r)
		return
	}
	doc := BuildStatus(h.src)
	fl, isFleet := BuildFleet(h.src)
	if !authorized(r) {
		doc.Redact()
		fl.Redact()
	}
	data := h.pageData(&doc, fl, isFleet, !authorized(r))
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, data); err != nil {
		http.Error(w, "admin: rendering the status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Write(b.Bytes())
}

func (h *handler) pageData(doc *statusdoc.StatusDoc, fl statusdoc.FleetDoc, isFleet, redacted bool) pageData {
	now := doc.Time
	d := pageData{Title: "tidstorage", Version: doc.Version, Now: now.Format("2006-01-02 15:04:05 UTC"), Role: "all-in-one",
		Bootstrapped: doc.Bootstrapped, Redacted: redacted, Failure: doc.TrackerFailure}
	config := "CONFIG"
	if !redacted && h.src.ConfigFile != "" {
		config = h.src.ConfigFile
	}
	var lags map[string][]lagPoint
	if h.src.LagHistory != nil {
		lags = h.src.LagHistory.series(now)
	}
	partialPin := map[string]uint64{}
	for _, p := range doc.PartialPins() {
		for _, id := range p.Storages {
			partialPin[id] = p.ID
		}
	}
	watcher := map[string]statusdoc.HistoryDoc{}
	for _, w := range doc.History {
		watcher[w.Storage] = w
	}
	for _, s := range doc.Storages {
		ps := pageStorage{ID: s.ID, Label: h.src.Labels[s.ID], TID: "-", Time: "-", Age: "-", Lag: "0s"}
		if ps.Label == "" {
			ps.Label = s.ID
		}
		if s.Published != nil {
			ps.TID = s.Published.Hex
			if s.Published.Int != 0 {
				ps.Time = s.Published.Time.UTC().Format("2006-01-02 15:04:05")
			} else {
				ps.Time = "empty"
			}
		}
		if s.LagSeconds != nil {
			ps.Age = shortDur(time.Duration(*s.LagSeconds * float64(time.Second)))
		}
		if s.Published != nil && s.Transient != nil && s.Transient.Int > s.Published.Int && s.Published.Int != 0 {
			ps.Lag = shortDur(s.Transient.Time.Sub(s.Published.Time))
		}
		var state []string
		switch {
		case s.Published == nil:
			state, ps.Bad = append(state, "not published yet"), true
		case partialPin[s.ID] != 0:
			state, ps.Bad = append(state, fmt.Sprintf("HELD by a partial commit (pin %d)", partialPin[s.ID])), true
		case s.HeldByUnaccounted:
			state, ps.Bad = append(state, fmt.Sprintf("HELD by %d unaccounted commit(s)", len(s.Unaccounted))), true
		}
		if s.BlindConnections > 0 {
			state, ps.Bad = append(state, fmt.Sprintf("BLIND (%d connection(s))", s.BlindConnections)), true
		}
		if w, ok := watcher[s.ID]; ok && !w.Connected {
			state, ps.Bad = append(state, "ZEO unreachable (history watcher)"), true
		}
		if s.Busy {
			state = append(state, "busy")
		}
		if len(state) == 0 {
			state = append(state, "idle")
		}
		ps.State = strings.Join(state, ", ")
		ps.Spark = sparkline(lags[s.ID], now, time.Hour)
		if ps.Bad {
			d.Problems++
		}
		d.Storages = append(d.Storages, ps)
	}
	for _, p := range doc.Pins {
		pp := pagePin{ID: p.ID, Kind: p.Kind, Storages: h.labelList(p.Storages), Reason: p.Reason,
			Since: shortDur(time.Duration(p.AgeSeconds*float64(time.Second))) + " ago"}
		if p.Acceptable {
			pp.Command = fmt.Sprintf("tidstorage accept-partial -c %s --yes %d", config, p.ID)
		}
		switch p.Kind {
		case "partial":
			d.Partial = append(d.Partial, pp)
		case "unaccounted":
			d.Unaccounted = append(d.Unaccounted, pp)
		default:
			d.OtherPins = append(d.OtherPins, pp)
		}
	}
	d.Problems += len(d.Partial) + len(d.Unaccounted)
	d.InFlight = fmt.Sprintf("%d participation(s), %d classic transaction(s) in flight", len(doc.Participations), len(doc.Classic))
	for _, w := range doc.History {
		pw := pageWatcher{Storage: h.src.Labels[w.Storage], State: "connected", Lag: shortDur(time.Duration(w.LagSeconds * float64(time.Second))),
			Reconnects: w.Reconnects, Error: w.LastError}
		if pw.Storage == "" {
			pw.Storage = w.Storage
		}
		if !w.Connected {
			pw.State, pw.Bad = "DISCONNECTED", true
		}
		if w.Since != nil {
			pw.Since = w.Since.UTC().Format("2006-01-02 15:04:05")
		}
		d.Watchers = append(d.Watchers, pw)
	}
	if isFleet {
		d.Fleet = &fl
		d.Role = fl.Role
		d.FleetRows = fleetRows(fl, now)
		for _, r := range d.FleetRows {
			if r.Bad {
				d.Problems++
			}
		}
	}
	if a := doc.Archive; a != nil {
		pa := &pageArchive{State: a.State, LastPoint: "none yet", Lag: shortDur(time.Duration(a.LagSeconds * float64(time.Second))),
			Errors: a.Errors, Bad: a.Failing}
		if !a.LastPoint.IsZero() {
			pa.LastPoint = shortDur(now.Sub(a.LastPoint)) + " ago"
		}
		if a.Failing {
			pa.State += ", FAILING (the object store cannot be written)"
			d.Problems++
		}
		d.Archive = pa
	}
	if h.src.Backups != nil {
		runs, err := h.src.Backups()
		if err != nil {
			d.BackupsError = err.Error()
			if redacted {
				d.BackupsError = statusdoc.Redacted
			}
		}
		for _, r := range runs {
			pb := pageBackup{Command: r.Command, Success: "never", Last: "ok"}
			if !r.LastSuccess.IsZero() {
				pb.Success = shortDur(now.Sub(r.LastSuccess)) + " ago"
			}
			if !r.OK {
				pb.Last, pb.Bad = "FAILED "+shortDur(now.Sub(r.LastRun))+" ago", true
				d.Problems++
			}
			d.Backups = append(d.Backups, pb)
		}
	}
	return d
}

// labelList names storages by their labels.
func (h *handler) labelList(ids []string) string {
	var out []string
	for _, id := range ids {
		if l := h.src.Labels[id]; l != "" {
			id = l
		}
		out = append(out, id)
	}
	return strings.Join(out, ", ")
}

func fleetRows(fl statusdoc.FleetDoc, now time.Time) []pageFleetRow {
	var rows []pageFleetRow
	for _, s := range fl.Sidecars {
		r := pageFleetRow{Name: "sidecar " + s.Source, State: "connected"}
		if !s.Connected {
			r.State, r.Bad = "DOWN", true
		}
		if !s.Since.IsZero() {
			r.State += " since " + shortDur(now.Sub(s.Since)) + " ago"
		}
		r.Detail = fmt.Sprintf("lag %s, %d gap(s), %d restart(s)", shortDur(time.Duration(s.LagSeconds*float64(time.Second))), s.Gaps, s.Restarts)
		rows = append(rows, r)
	}
	if l := fl.Link; l != nil {
		r := pageFleetRow{Name: "link to the tracker", State: "connected"}
		if !l.Connected {
			r.State, r.Bad = "DOWN", true
		}
		r.Detail = fmt.Sprintf("%d of %d reports pending, the oldest %s old; %d dropped", l.Pending, l.Capacity,
			shortDur(time.Duration(l.LagSeconds*float64(time.Second))), l.Dropped)
		if l.Capacity > 0 && l.Pending*5 >= l.Capacity*4 {
			r.Bad = true
		}
		rows = append(rows, r)
	}
	return rows
}

// shortDur prints a duration to the second (or the millisecond below one).
func shortDur(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// sparkline draws lag samples as an inline SVG polyline, from the oldest
// sample kept (at most window ago) to now, 0 at the bottom and the largest
// lag at the top; an empty string without samples.
func sparkline(pts []lagPoint, now time.Time, window time.Duration) template.HTML {
	if len(pts) == 0 {
		return ""
	}
	const w, h = 160.0, 24.0
	span := min(max(now.Sub(pts[0].t), time.Minute), window)
	top := 0.0
	for _, p := range pts {
		top = max(top, p.lag)
	}
	var b strings.Builder
	var x, y float64
	for i, p := range pts {
		x = max(w-float64(now.Sub(p.t))/float64(span)*w, 0)
		y = h - 2
		if top > 0 {
			y = h - 2 - p.lag/top*(h-4)
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
	}
	title := fmt.Sprintf("publication lag over the last %s: max %s", shortDur(span), shortDur(time.Duration(top*float64(time.Second))))
	return template.HTML(fmt.Sprintf(`<svg class="spark" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s"><title>%s</title>`+
		`<line x1="0" y1="%.1f" x2="%d" y2="%.1f" class="base"/><polyline points="%s"/><circle cx="%.1f" cy="%.1f" r="2"/></svg>`,
		int(w), int(h), int(w), int(h), template.HTMLEscapeString(title), template.HTMLEscapeString(title), h-2, int(w), h-2, b.String(), min(x, w-2), y))
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>{{if .Problems}}({{.Problems}}) {{end}}{{.Title}}</title>
<style>
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1d2327;background:#fff}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em}
.meta{color:#646970}table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #dcdcde;vertical-align:middle}
th{font-weight:600;color:#50575e;background:#f6f7f7}
code,.tid{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.92em}
.ok{color:#00733b}.bad{color:#b32d2e;font-weight:600}
.alert{border-left:4px solid #b32d2e;background:#fcf0f1;padding:.6em 1em;margin:.6em 0}
.alert code{background:#fff;padding:.1em .3em;display:inline-block;margin-top:.3em}
.good{border-left:4px solid #00a32a;background:#edfaef;padding:.6em 1em}
svg.spark polyline{fill:none;stroke:#2271b1;stroke-width:1.5}svg.spark circle{fill:#2271b1}svg.spark .base{stroke:#dcdcde;stroke-width:1}
footer{margin-top:2em;color:#646970;font-size:.9em}
</style></head>
<body>
<h1>tidstorage <span class="meta">{{.Version}}</span></h1>
<div class="meta">{{.Role}} · {{.Now}}{{if .Redacted}} · redacted: no credential{{end}} · this page reloads every 30 s</div>
{{if .Failure}}<div class="alert"><b>The tracker failed</b>: publication stopped at the last good point; a restart recovers. {{.Failure}}</div>{{end}}
{{if not .Bootstrapped}}<div class="alert"><b>Not bootstrapped</b>: nothing is published yet (waiting for a known TID of every storage); backups cannot start.</div>{{end}}
{{range .Partial}}<div class="alert" data-pin="{{.ID}}"><b>Partial commit</b> (pin {{.ID}}, {{.Since}}) on {{.Storages}}: a transaction committed on some storages and not on others; their published TIDs stay where they are until you decide.<br>{{.Reason}}<br>Accept the live state as the new baseline: <code>{{.Command}}</code></div>{{end}}
{{range .Unaccounted}}<div class="alert" data-pin="{{.ID}}"><b>Unaccounted commits</b> (pin {{.ID}}, {{.Since}}) hold {{.Storages}}: the storage's own history has commits that no proxied client reported. Once decided: <code>{{.Command}}</code></div>{{end}}
{{if and (not .Problems) .Bootstrapped (not .Failure)}}<div class="good">Every storage publishes; nothing waits for an operator.</div>{{end}}

<h2>Storages</h2>
<table id="storages"><tr><th>Storage</th><th>Published TID</th><th>Time (UTC)</th><th>Point age</th><th>Publication lag</th><th>Lag, last hour</th><th>State</th></tr>
{{range .Storages}}<tr><td title="{{.ID}}">{{.Label}}</td><td class="tid">{{.TID}}</td><td>{{.Time}}</td><td>{{.Age}}</td><td>{{.Lag}}</td><td>{{.Spark}}</td><td class="{{if .Bad}}bad{{else}}ok{{end}}">{{.State}}</td></tr>
{{end}}</table>
<p class="meta">{{.InFlight}}.</p>
{{if .OtherPins}}<h2>Other pins</h2><table><tr><th>Pin</th><th>Kind</th><th>Storages</th><th>Since</th><th>Release</th></tr>
{{range .OtherPins}}<tr><td>{{.ID}}</td><td>{{.Kind}}</td><td>{{.Storages}}</td><td>{{.Since}}</td><td>{{if .Command}}<code>{{.Command}}</code>{{else}}ends when its connections close{{end}}</td></tr>
{{end}}</table>{{end}}

{{if .Watchers}}<h2>History watchers</h2>
<table id="watchers"><tr><th>Storage</th><th>State</th><th>Since (UTC)</th><th>Lag</th><th>Reconnects</th><th>Last error</th></tr>
{{range .Watchers}}<tr><td>{{.Storage}}</td><td class="{{if .Bad}}bad{{else}}ok{{end}}">{{.State}}</td><td>{{.Since}}</td><td>{{.Lag}}</td><td>{{.Reconnects}}</td><td>{{.Error}}</td></tr>
{{end}}</table>{{end}}

{{if .Fleet}}<h2>Fleet</h2>
<table id="fleet"><tr><th>Link</th><th>State</th><th></th></tr>
{{range .FleetRows}}<tr><td>{{.Name}}</td><td class="{{if .Bad}}bad{{else}}ok{{end}}">{{.State}}</td><td>{{.Detail}}</td></tr>
{{else}}<tr><td colspan="3">no sidecar has connected yet</td></tr>{{end}}</table>{{end}}

{{if or .Backups .BackupsError}}<h2>Backups</h2>
{{if .BackupsError}}<p class="bad">The backup metrics file cannot be read: {{.BackupsError}}</p>{{end}}
<table id="backups"><tr><th>Command</th><th>Last success</th><th>Last run</th></tr>
{{range .Backups}}<tr><td>tidstorage {{.Command}}</td><td>{{.Success}}</td><td class="{{if .Bad}}bad{{else}}ok{{end}}">{{.Last}}</td></tr>
{{else}}<tr><td colspan="3">no run recorded yet</td></tr>{{end}}</table>{{end}}

{{with .Archive}}<h2>Archive</h2>
<table id="archive"><tr><th>State</th><th>Newest restorable point</th><th>Loss window</th><th>Errors</th></tr>
<tr><td class="{{if .Bad}}bad{{else}}ok{{end}}">{{.State}}</td><td>{{.LastPoint}}</td><td>{{.Lag}}</td><td>{{.Errors}}</td></tr></table>{{end}}

<footer>tidstorage status page: the same figures as <code>tidstorage status</code>, <code>/status</code> and <code>/metrics</code>. {{if .Redacted}}Client addresses, users, descriptions and file names are redacted without the admin token.{{end}}</footer>
</body></html>
`))
