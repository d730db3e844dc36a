package config

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/hashicorp/hcl/v2"
)

// Archive defaults. docs/config.md repeats them: change both together.
const (
	DefaultArchiveInterval  = time.Second         // Litestream's default: what a site loses with its whole host
	DefaultArchiveRetention = 30 * 24 * time.Hour // every point of this window stays restorable
)

// Archive is the continuous archive of every storage with a data_fs to an
// object store (docs/backup.md, "Continuous archive"). Credentials are never
// in the configuration: they follow the AWS conventions.
type Archive struct {
	URL       string // "s3://bucket/prefix" or "file:///dir"
	Endpoint  string // an S3-compatible server's URL; "" = AWS
	Region    string
	PathStyle bool
	Interval  time.Duration
	Retention time.Duration
	// Recipients are age public keys ("age1..."): when set, every object
	// leaving the host is encrypted to them.
	Recipients []string
	Range      hcl.Range
}

// ParseRetention reads a retention: a Go duration ("72h") or a whole number
// of days ("30d").
func ParseRetention(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d > 0
}

func (d *decoder) decodeArchive(r *rawArchive) *Archive {
	ar := &Archive{Interval: DefaultArchiveInterval, Retention: DefaultArchiveRetention, Range: r.DefRange}
	if a := attr(r.URL); d.str(a, &ar.URL) {
		u, err := url.Parse(ar.URL)
		switch {
		case err != nil:
			d.errorf(a.Expr.Range(), "Invalid archive url", "url = %q: %v", ar.URL, err)
		case u.Scheme == "s3" && u.Host == "":
			d.errorf(a.Expr.Range(), "Invalid archive url", `url = %q names no bucket; write "s3://BUCKET/PREFIX"`, ar.URL)
		case u.Scheme == "file" && (u.Host != "" || !strings.HasPrefix(u.Path, "/")):
			d.errorf(a.Expr.Range(), "Invalid archive url", `url = %q: a file url is "file:///absolute/directory"`, ar.URL)
		case u.Scheme != "s3" && u.Scheme != "file":
			d.errorf(a.Expr.Range(), "Invalid archive url", `url = %q: use "s3://BUCKET/PREFIX" or "file:///DIRECTORY"`, ar.URL)
		}
	}
	if a := r.Endpoint; d.str(a, &ar.Endpoint) {
		if u, err := url.Parse(ar.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			d.errorf(a.Expr.Range(), "Invalid endpoint", `endpoint = %q; write the server's URL, such as "https://s3.example.com" or "http://127.0.0.1:7070"`, ar.Endpoint)
		}
	}
	d.str(r.Region, &ar.Region)
	d.boolean(r.PathStyle, &ar.PathStyle)
	d.duration(r.Interval, &ar.Interval, 10*time.Millisecond)
	if a := r.Retention; a != nil {
		var s string
		if d.str(a, &s) {
			v, ok := ParseRetention(s)
			if !ok {
				d.errorf(a.Expr.Range(), "Invalid retention", `retention = %q; write a number of days such as "30d", or a duration such as "72h"`, s)
			}
			ar.Retention = v
		}
	}
	if a := r.Recipients; a != nil {
		d.stringList(a, listMsg{"Invalid recipients", `recipients must be a list of age public keys, e.g. ["age1..."]`},
			listMsg{"Invalid recipient", `each recipient is an age public key in double quotes ("age1...")`}, func(e hcl.Expression, s string) {
				if _, err := age.ParseX25519Recipient(s); err != nil {
					d.errorf(e.Range(), "Invalid recipient", "%q is not an age public key (age1...): %v", s, err)
					return
				}
				ar.Recipients = append(ar.Recipients, s)
			})
	}
	return ar
}
