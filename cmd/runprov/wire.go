package main

import (
	"github.com/runprov/runprov/core"
	gitdrv "github.com/runprov/runprov/drivers/git"
	imagedrv "github.com/runprov/runprov/drivers/image"
	"github.com/runprov/runprov/drivers/sqlite"
	"github.com/runprov/runprov/plugins/consumer"
)

// wire builds the Terminal: every plugin and driver of runprov, registered
// explicitly, here and nowhere else.
func wire(a *app, st *sqlite.Store) *core.Terminal {
	t := core.NewTerminal()
	layout := st.Layout()
	gitOpener := gitdrv.Opener{}

	t.Drivers.Register(st)
	t.Drivers.Register(gitOpener)
	t.Drivers.Register(imagedrv.New(layout, st, imagedrv.Options{Logger: a.log}))

	t.Plugins.Register(&consumer.Consumer{Store: st, Git: gitOpener, TmpDir: layout.Tmp(), Log: a.log})
	return t
}
