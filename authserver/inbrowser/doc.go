// Package inbrowser drives the authorization server's pages in a real
// headless Chromium, through the shared driver (package browser): the same
// cookies, Content-Security-Policy, form posts and redirects a person's
// browser meets. Each page is saved as a PNG in the test's artifacts
// directory ($EPICME_ARTIFACTS_DIR/<test>).
//
// The tests live apart from package authserver's so that
// `go test ./authserver` stays fast; they run on the same test server
// (package authserver/internal/testserver). Without Chromium they skip,
// saying how to install it.
package inbrowser
