package zeoproxy

// StorageIDOf is the id the relay gives a storage that the configuration does
// not list, reached by clients at addr (for the external tests).
var StorageIDOf = classicStorageID
