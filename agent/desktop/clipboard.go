package desktop

import "context"

// Clipboard is the desktop's clipboard as a value other packages can be
// handed (the script API's clipboard module takes one), so they use the
// native X11 selection and the desktop's display discovery (X servers'
// -auth files, session environments) without importing the rest of the
// desktop or needing DISPLAY in the agent's environment.
type Clipboard struct {
	Options Options
}

// Read returns the clipboard text.
func (c Clipboard) Read(ctx context.Context) (string, error) { return ReadClipboard(ctx, c.Options) }

// Write makes text the clipboard content.
func (c Clipboard) Write(ctx context.Context, text string) error {
	return WriteClipboard(ctx, c.Options, text)
}
