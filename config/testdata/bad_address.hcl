status_file = "tid.log"
classic {
  listen = "localhost"
}
admin {
  listen = "127.0.0.1:99999"
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
