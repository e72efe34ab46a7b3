"""Phone model profiles (spec §B.5, §C.5, §C.6, §G.2) and scenario overrides."""

from __future__ import annotations

import dataclasses

import pytest

from phoneemu.crypto.hashes import HashAlg
from phoneemu.errors import EncodeError, ScenarioError
from phoneemu.phone.profile import PROFILES, PhoneProfile, get_profile, profile_from_dict


def test_named_profiles() -> None:
    assert {"cp-8861", "cp-7962", "cp-7940", "cp-7942-symmetric"} <= set(PROFILES)
    p8861 = get_profile("cp-8861")
    assert p8861.trust_list_limit == 65536 and p8861.sbd and p8861.ec_support and p8861.max_rsa_bits == 4096
    assert p8861.hash_algorithms >= {HashAlg.SHA1, HashAlg.SHA512}
    p7962 = get_profile("cp-7962")
    assert p7962.hash_algorithms == {HashAlg.SHA1} and not p7962.ec_support and p7962.max_rsa_bits == 2048
    assert "CTLFile.tlv" not in p7962.request_order  # OBS-7962
    assert p7962.symmetric_key_bits == 128
    p7940 = get_profile("cp-7940")
    assert not p7940.sbd and not p7940.tvs_enabled and p7940.config_policy == "plain"
    sym = get_profile("cp-7942-symmetric")
    assert not sym.pki_capable and sym.symmetric_key_bits == 128 and not sym.capf


def test_trust_file_names() -> None:
    names = get_profile("cp-8861").trust_file_names("AABBCCDDEEFF")
    assert names == ("CTLSEPAABBCCDDEEFF.tlv", "CTLFile.tlv", "ITLSEPAABBCCDDEEFF.tlv", "ITLFile.tlv")


def test_frozen_and_slotted() -> None:
    p = get_profile("cp-8861")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.sbd = False  # type: ignore[misc]
    assert not hasattr(p, "__dict__")


def test_unknown_profile_named() -> None:
    with pytest.raises(ScenarioError, match="cp-9999"):
        get_profile("cp-9999")


def test_overrides() -> None:
    p = profile_from_dict("cp-7962", {"hash_algorithms": ["sha1", "SHA-512"], "max_rsa_bits": 4096,
                                      "request_order": ["ITLFile.tlv"]})
    assert p.hash_algorithms == {1, 3} and p.max_rsa_bits == 4096 and p.request_order == ("ITLFile.tlv",)
    assert p.name == "cp-7962"
    assert profile_from_dict(get_profile("cp-8861"), {}) == get_profile("cp-8861")


@pytest.mark.parametrize(("overrides", "key"), [
    ({"colour": "red"}, "colour"),
    ({"max_rsa_bits": "big"}, "max_rsa_bits"),
    ({"max_rsa_bits": 3000}, "max_rsa_bits"),
    ({"sbd": 1}, "sbd"),
    ({"hash_algorithms": ["md5"]}, "hash_algorithms"),
    ({"hash_algorithms": [9]}, "hash_algorithms"),
    ({"hash_algorithms": "sha1"}, "hash_algorithms"),
    ({"request_order": ["CTL{model}.tlv"]}, "request_order[0]"),
    ({"request_order": "ITLFile.tlv"}, "request_order"),
    ({"config_policy": "whatever"}, "config_policy"),
    ({"trust_list_limit": 10}, "trust_list_limit"),
    ({"pki_capable": False}, "symmetric_key_bits"),
    ({"status_checksum": "crc"}, "status_checksum"),
])
def test_bad_overrides_name_the_key(overrides: dict[str, object], key: str) -> None:
    with pytest.raises(ScenarioError) as ei:
        profile_from_dict("cp-8861", overrides)
    assert ei.value.path == key


def test_constructor_rejects_unencodable() -> None:
    with pytest.raises(EncodeError) as ei:
        PhoneProfile(name="x", model="y", symmetric_key_bits=64)
    assert ei.value.path == "symmetric_key_bits"
    with pytest.raises(EncodeError):
        PhoneProfile(name="", model="y")
    with pytest.raises(EncodeError):
        PhoneProfile(name="x", model="y", request_order=())
