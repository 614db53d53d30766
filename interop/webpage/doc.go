// Package webpage tests server-lite's own web page (server-lite/webpage)
// in headless Chromium, through the paths a user takes, against a whole
// server-lite (servertest) and our real agent binary on Xvfb.
package webpage
