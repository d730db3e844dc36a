status_file = "tid.log"
log {}
log {}
zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" {}
}
zeo "a" {
  listen   = "localhost:8101"
  upstream = "localhost:8201"
}
