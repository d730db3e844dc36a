status_file = "tid.log"
zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" {}
  storage "2" {
    id = "((('localhost', 8100),), '1')"
  }
  storage "1" {}
  storage "3" {}
}
storage "((('localhost', 8100),), '3')" {
  data_fs = "Data.fs"
}
