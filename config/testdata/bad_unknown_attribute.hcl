status_file = "tid.log"
burst_periode = "30s"

classic {
  listen = "127.0.0.1:9001"
  alow   = ["10.0.0.0/8"]
}

zeo "a" {
  listen   = "localhost:8100"
  upstream = "localhost:8200"
  storage "1" {
    datafs = "Data.fs"
  }
}
