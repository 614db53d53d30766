//go:build !linux && !windows && !darwin

package desktop

// noInput is used where no input API is wired up (the BSDs): the desktop is
// view-only there.
type noInput struct{}

func newPlatformInput() platformInput { return noInput{} }

func (noInput) key(byte, bool, bool) error  { return errInputUnsupported }
func (noInput) unicode(uint16, bool) error  { return errInputUnsupported }
func (noInput) mouseMove(int, int) error    { return errInputUnsupported }
func (noInput) mouseButton(int, bool) error { return errInputUnsupported }
func (noInput) wheel(int) error             { return errInputUnsupported }
func (noInput) cursor() (byte, bool)        { return 0, false }
func (noInput) keyState() byte              { return 0 }
