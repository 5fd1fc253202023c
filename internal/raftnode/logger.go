package raftnode

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// raftLogger adapts slog to raft.Logger. raft's Info chatter goes to Debug
// except leadership and election lines, which operators want at Info.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) logf(level slog.Level, format string, v ...interface{}) {
	if !r.l.Enabled(context.Background(), level) {
		return
	}
	r.l.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "raft")
}

func (r raftLogger) Debug(v ...interface{})                   { r.logf(slog.LevelDebug, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...interface{})   { r.logf(slog.LevelDebug, format, v...) }
func (r raftLogger) Info(v ...interface{})                    { r.logf(slog.LevelDebug, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...interface{})    { r.logf(slog.LevelDebug, format, v...) }
func (r raftLogger) Warning(v ...interface{})                 { r.logf(slog.LevelWarn, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...interface{}) { r.logf(slog.LevelWarn, format, v...) }
func (r raftLogger) Error(v ...interface{})                   { r.logf(slog.LevelError, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...interface{})   { r.logf(slog.LevelError, format, v...) }
func (r raftLogger) Fatal(v ...interface{}) {
	r.logf(slog.LevelError, "%s", fmt.Sprint(v...))
	os.Exit(1)
}
func (r raftLogger) Fatalf(format string, v ...interface{}) {
	r.logf(slog.LevelError, format, v...)
	os.Exit(1)
}
func (r raftLogger) Panic(v ...interface{})                 { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...interface{}) { panic(fmt.Sprintf(format, v...)) }
