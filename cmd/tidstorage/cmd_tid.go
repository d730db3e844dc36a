package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/tidstorage/tidstorage/internal/txn"
)

const tidHelp = `
Each argument is a TID or a time, in any of these forms (guessed, or forced
with --from):
  int     272351243011436356 (as in DUMP and the status file; a trailing L is ok)
  hex     03c7960335d52f44 (16 digits) or 0x3c7960335d52f44
  base64  A8eWAzXVL0Q= (the 8 bytes, as dump_tid_dict.py printed)
  time    2018-05-16T21:55:12.617051Z, "2018-05-16 21:55:12.617051" (UTC), or now
A 16-digit decimal number is read as hex unless --from int is given. A time
gives the TID ZODB would assign at that moment (TimeStamp).`

// tidInfo is one converted TID, also the --json form.
type tidInfo struct {
	Input  string `json:"input,omitempty"`
	Int    uint64 `json:"int"`
	Hex    string `json:"hex"`
	Base64 string `json:"base64"`
	Time   string `json:"time"` // RFC 3339, UTC, nanoseconds
	ZODB   string `json:"zodb"` // str(TimeStamp)
	Unix   string `json:"unix"` // seconds since the epoch, 9 decimals
}

func newTIDInfo(input string, t txn.TID) tidInfo {
	tm := t.Time()
	return tidInfo{
		Input:  input,
		Int:    uint64(t),
		Hex:    t.Hex(),
		Base64: t.Base64(),
		Time:   tm.Format(time.RFC3339Nano),
		ZODB:   t.String(),
		Unix:   fmt.Sprintf("%d.%09d", tm.Unix(), tm.Nanosecond()),
	}
}

func runTID(c *cli, args []string) int {
	fs := c.flagSet("tid")
	from := fs.String("from", "", "input `FORMAT`: int, hex, base64 or time (default: guess)")
	asJSON := fs.Bool("json", false, "print one JSON object per argument")
	if ok, code := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		return c.usageError("tid", "give at least one TID or time")
	}
	switch txn.TIDFormat(*from) {
	case txn.FormatAuto, txn.FormatInt, txn.FormatHex, txn.FormatBase64, txn.FormatTime:
	default:
		return c.usageError("tid", "--from %q: use int, hex, base64 or time", *from)
	}
	code := 0
	enc := json.NewEncoder(c.stdout)
	for i, arg := range fs.Args() {
		t, err := txn.ParseTID(arg, txn.TIDFormat(*from))
		if err != nil {
			fmt.Fprintf(c.stderr, "tidstorage %v\n", err) // err starts with "tid: "
			code = 1
			continue
		}
		info := newTIDInfo(arg, t)
		if *asJSON {
			enc.Encode(info)
			continue
		}
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		printTID(c.stdout, info)
	}
	return code
}

func printTID(w io.Writer, i tidInfo) {
	fmt.Fprintf(w, "int     %d\n", i.Int)
	fmt.Fprintf(w, "hex     %s\n", i.Hex)
	fmt.Fprintf(w, "base64  %s\n", i.Base64)
	fmt.Fprintf(w, "time    %s\n", i.Time)
	fmt.Fprintf(w, "zodb    %s UTC\n", i.ZODB)
}
