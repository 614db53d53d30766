package desktop

import "log/slog"

func openScreen(opts Options, log *slog.Logger) (screen, string, error) {
	return openX(opts, log)
}
