// Command paintwin is a Windows test target for the desktop tests under
// wine: it opens a borderless, topmost window of one known colour at a
// known place with an EDIT control in it that has the keyboard focus,
// and writes the EDIT's text to a file whenever it changes. A test that
// reads that colour in a remote viewer's canvas and finds the keys it
// typed in the viewer in the file has proven capture and input end to
// end. It is test support only, built with GOOS=windows by the tests.
//
//	paintwin -x 100 -y 120 -w 600 -h 400 -color e03c28 -out C:\paintwin.txt
package main
