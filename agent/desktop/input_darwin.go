package desktop

// macOS input needs CoreGraphics (CGEventPost), which this build cannot
// reach without cgo; see the package documentation. The desktop is view-only
// on macOS until that path lands.
type darwinInput struct{ noInputDarwin }

type noInputDarwin struct{}

func newPlatformInput() platformInput { return darwinInput{} }

func (noInputDarwin) key(byte, bool, bool) error  { return errInputUnsupported }
func (noInputDarwin) unicode(uint16, bool) error  { return errInputUnsupported }
func (noInputDarwin) mouseMove(int, int) error    { return errInputUnsupported }
func (noInputDarwin) mouseButton(int, bool) error { return errInputUnsupported }
func (noInputDarwin) wheel(int) error             { return errInputUnsupported }
func (noInputDarwin) cursor() (byte, bool)        { return 0, false }
func (noInputDarwin) keyState() byte              { return 0 }
