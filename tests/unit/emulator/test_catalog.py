"""Devices under any name, and calibrations that change only when the device is recalibrated."""

from __future__ import annotations

import pytest

from prefect_qiskit_jobs.emulator.catalog import Catalog


def test_a_fake_served_twice_is_loaded_once_and_two_devices_cannot_share_a_name() -> None:
    catalog = Catalog(("ibm_a=kyiv", "ibm_b=kyiv", "manila"))

    assert [d.name for d in catalog] == ["ibm_a", "ibm_b", "ibmq_manila"]
    first, second = catalog.get("ibm_a"), catalog.get("ibm_b")
    assert first is not None
    assert second is not None
    assert first.fake is second.fake
    assert first.configuration["backend_name"] == "ibm_a"
    with pytest.raises(ValueError, match="two backends are served as 'ibmq_manila'"):
        Catalog(("manila", "ibmq_manila=lima"))


def test_properties_keep_their_calibration_date_and_unknown_ids_are_not_found() -> None:
    device = Catalog(("manila",)).get("ibmq_manila")
    assert device is not None
    first = device.properties(device.calibration)["last_update_date"]

    assert device.properties(device.calibration)["last_update_date"] == first
    assert device.find_calibration("no-such-calibration") is None
    old = device.calibration
    device.recalibrate()
    assert device.find_calibration(old.id) == old
    assert device.properties(device.calibration)["last_update_date"] > first


def test_each_device_has_a_mock_twin_named_as_the_client_derives_it() -> None:
    catalog = Catalog(("ibm_a=manila", "ibmq_a=nairobi", "lima"))

    twin = catalog.get("mock_a")
    assert twin is not None
    assert twin.mock
    assert twin.fake is catalog.devices["ibm_a"].fake  # the first of two names sharing a twin name
    assert twin.calibrations is catalog.devices["ibm_a"].calibrations
    assert catalog.get("mock_lima") is not None
    assert [d.name for d in catalog] == ["ibm_a", "ibmq_a", "ibmq_lima"]
    assert [d.name for d in catalog.listed(True) if d.mock] == ["mock_a", "mock_lima"]
