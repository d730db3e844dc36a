status_file = "tid.log"
classic {
  listen = "localhost"
}
admin {
  listen = "unix:/run/admin.sock"
}
zeo "a" {
  listen   = "unix:var/zeo.sock"
  upstream = "localhost:0"
  storage "1" {}
}
zeo "b" {
  listen   = "unix:"
  upstream = "[::1:8100"
  storage "1" {}
}
zeo "c" {
  listen   = "127.0.0.1:99999"
  upstream = "zeo c:8100"
  storage "1" {}
}
