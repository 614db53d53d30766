package desktop

// jpegEncoder compresses one BGRX rectangle. Implementations are not safe
// for concurrent use; each encoding worker owns one.
type jpegEncoder interface {
	// encode appends the baseline JPEG of f at the given quality (1-100)
	// to dst and returns the extended slice.
	encode(dst []byte, f frame, quality int) ([]byte, error)
	close()
}

// encoderName says which JPEG implementation this build uses, for logs and
// the benchmark program.
func encoderName() string { return jpegImpl }
