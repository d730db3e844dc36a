status_file = "/var/lib/tidstorage/status"
zeo "main" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" { data_fs = "zeo1/Data.fs" }
  storage "catalog" {}
}
zeo "other" {
  listen   = "unix:/run/tidstorage/zeo2.sock"
  upstream = "unix:/run/zeo2.sock"
  storage "it's" { id = "custom" }
  storage "1" {}
}
storage "((('zeo3', 8100),), '1')" { repository = "/backup/zeo3" }
