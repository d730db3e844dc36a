status_file = "tid.log"
zeo {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
}
zeo "a" "b" {
  listen   = "localhost:8101"
  upstream = "localhost:8201"
  storage "1" {}
}
zeo "" {
  listen   = "localhost:8102"
  upstream = "localhost:8202"
  storage "" {}
}
storage "" {}
classic {
  allow = "10.0.0.0/8"
}
