package terminal

import "io"

// errEOF is what a proc's Read returns once the terminal has no writer left.
var errEOF = io.EOF
