status_file         = "tid.log"
burst_period        = "30"
full_dump_period    = 300
classic_txn_timeout = "0s"
shutdown_timeout    = "-5s"
