package domains

import (
	"reflect"
	"testing"
	"time"

	"github.com/domaind/domaind/internal/domain"
	"github.com/domaind/domaind/internal/store"
)

// TestRotationView: the view carries every field it has from the row (a field
// added to domain.Rotation and forgotten here would stay zero), and none of
// the row's keys.
func TestRotationView(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 1, 5, h, 0, 0, 0, time.UTC) }
	row := store.Rotation{
		DomainID: "0123456789abcdef01234567", ProjectID: 7, Domain: "example.com",
		Mode: domain.DKIMModeCNAME, State: domain.RotationSwitched,
		CurrentSelector: "autosend2", CurrentValue: "v=DKIM1; k=rsa; p=CUR", CurrentSince: at(1), CurrentVisibleAt: at(2),
		NextSelector: "autosend", NextValue: "v=DKIM1; k=rsa; p=NEXT", NextSealed: []byte("sealed"),
		PrevSelector: "autosend3", PrevValue: "v=DKIM1; k=rsa; p=PREV",
		Reason: "requested", StartedAt: at(3), PublishedAt: at(4), VisibleAt: at(5), SwitchedAt: at(6),
		RetireAt: at(7), RetiredAt: at(8), RemindedAt: at(9), Attempts: 2, LastError: "refused", StepAt: at(10),
	}
	want := domain.Rotation{
		Mode: domain.DKIMModeCNAME, State: domain.RotationSwitched,
		CurrentSelector: "autosend2", CurrentSince: at(1), NextSelector: "autosend", PreviousSelector: "autosend3",
		Reason: "requested", StartedAt: at(3), PublishedAt: at(4), VisibleAt: at(5), SwitchedAt: at(6),
		RetireAt: at(7), RetiredAt: at(8), Attempts: 2, LastError: "refused", NextStepAt: at(10),
	}
	got := rotationView(row)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rotationView:\n got %+v\nwant %+v", got, want)
	}
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("rotationView leaves %s zero", v.Type().Field(i).Name)
		}
	}
}
