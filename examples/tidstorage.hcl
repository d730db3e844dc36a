# tidstorage example configuration: two ZEO servers, three storages.
# Reference: docs/config.md. Check it with: tidstorage config check -c tidstorage.hcl
# Relative paths are relative to this file's directory.

# The status file (TID log): one line per publication, read back by backups.
status_file = "/var/lib/tidstorage/tidstorage.status"

# Write a "d" line (values published since the last line) at most every
# burst_period, and a "f" line (every value) at least every full_dump_period.
burst_period     = "30s" # default
full_dump_period = "5m"  # default

pid_file = "/run/tidstorage/tidstorage.pid" # optional; no pid file by default

# Several Zope processes on one remote host look like one client to the proxy.
# If each process gives all its ZEO storages one client-label of its own
# (zope.conf: <zeoclient> client-label zope-1 </zeoclient>), this tells them
# apart. Read docs/config.md first: a wrong labelling can hide a partial commit.
# client_label_identity = true

log {
  level  = "info" # trace, debug, info, warn, error
  format = "text" # or "json"
  # file = "/var/log/tidstorage/tidstorage.log"   # default: stderr; HUP reopens it
}

# The classic line protocol endpoint (patched Zopes, dump_tid_dict.py,
# `tidstorage dump`). Enabled by default on 127.0.0.1:9001 for loopback peers.
classic {
  listen = "127.0.0.1:9001"
  allow  = ["127.0.0.0/8", "::1", "10.1.0.0/16"] # addresses or CIDR prefixes
  # idle_timeout = "10m" # close silent connections that never reported a transaction
}

# /metrics (Prometheus), /status (JSON, what `tidstorage status` shows), /healthz,
# POST /accept-partial. Plain HTTP: keep it on loopback (SSH tunnel or a TLS
# reverse proxy from elsewhere). POSTs and the unredacted /status need the token
# in token_file (default: status_file + ".admin-token", created 0600 by serve).
admin {
  listen = "127.0.0.1:9002"
  # allowed_hosts = ["backup.example.com:9002"] # names a reverse proxy uses
}

# One zeo block per ZEO server. Zope/ZODB clients connect to `listen` instead
# of the real server; tidstorage relays every byte unchanged to `upstream`.
zeo "main" {
  listen         = "0.0.0.0:8100"          # where the proxy accepts clients
  client_address = "zeo1.example.com:8100" # what clients write in zope.conf (`server zeo1.example.com:8100`);
                                           # needed for default ids because 0.0.0.0 is not dialable
  upstream       = "127.0.0.1:8200"        # the real ZEO server, moved to another port

  # One storage block per ZEO storage name the server serves. The storage id
  # (the key in dump, status file and backups) defaults to what a patched
  # Zope would report: ((('zeo1.example.com', 8100),), '1').
  storage "1" {
    data_fs    = "/srv/zeo1/var/Data.fs"   # for the backup commands
    blob_dir   = "/srv/zeo1/var/blobs"
    repository = "/backup/zeo1-main"
  }
  storage "catalog" {
    data_fs    = "/srv/zeo1/var/Catalog.fs"
    repository = "/backup/zeo1-catalog"
  }

  # ZEO over TLS (docs/deploy.md, "ZEO over TLS"): terminate the clients' TLS
  # (zope.conf <clientstorage> with <ssl>) and/or re-originate it to a ZEO
  # server with <ssl>. Either block alone works. HUP reads the files again.
  # tls {
  #   cert_file      = "/etc/tidstorage/zeo-proxy.crt"
  #   key_file       = "/etc/tidstorage/zeo-proxy.key"
  #   client_ca_file = "/etc/tidstorage/zope-ca.crt"  # optional: require client certificates
  # }
  # upstream_tls {
  #   ca_file   = "/etc/tidstorage/zeo-ca.crt"        # signs the server's certificate
  #   cert_file = "/etc/tidstorage/zeo-client.crt"    # for the server's <ssl> authenticate
  #   key_file  = "/etc/tidstorage/zeo-client.key"
  # }
}

zeo "sessions" {
  listen   = "unix:/run/tidstorage/zeo2.sock" # unix sockets work on both sides
  upstream = "unix:/run/zeo2/zeo.sock"

  storage "1" {
    # Pin the id, e.g. to keep the key of an existing status file or backups.
    id         = "((('zeo2', 8100),), '1')"
    data_fs    = "/srv/zeo2/var/Data.fs"
    repository = "/backup/zeo2"
  }
}

# A storage reported only by patched Zopes over the classic protocol (not
# proxied), declared by its id so that the backup commands know its files.
storage "((('zeo3.example.com', 8100),), '1')" {
  data_fs    = "/srv/zeo3/var/Data.fs"
  repository = "/backup/zeo3"
}

# The continuous archive (docs/backup.md, "Continuous archive"): serve ships
# every published point of the storages with data_fs to an object store;
# `tidstorage restore --from-archive --at TIME` restores any moment of the
# window. Credentials come from the AWS environment, never from this file.
# Uncomment to use:
#
# archive {
#   url        = "s3://tidstorage/site1"   # or "file:///mnt/offsite/tidstorage"
#   endpoint   = "https://s3.example.com"  # an S3-compatible server; AWS when left out
#   region     = "us-east-1"
#   path_style = true
#   interval   = "1s"
#   retention  = "30d"
# }
