package core

import "time"

// ConfigEvent is one row of config_events: a change of a store setting.
type ConfigEvent struct {
	ID   int64     `json:"id"`
	Key  string    `json:"key"`
	Old  *string   `json:"old_value"` // nil: the setting was not set before
	New  string    `json:"new_value"`
	At   time.Time `json:"at"`
	User string    `json:"user"` // login name of who did it; "" when unknown
	UID  int       `json:"uid"`  // -1 when unknown
	Note string    `json:"note"`
}
