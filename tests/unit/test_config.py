"""Device config XML (spec §C.2, §C.4, §H.5): model, defusedxml parsing, stub, file names."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, EncodeError, SizeLimitError
from phoneemu.formats import config as c

CUCM_LIKE = b"""<?xml version="1.0" encoding="UTF-8"?>
<device xsi:type="axl:XIPPhone" ctiid="94" uuid="{3a1c}">
<fullConfig>true</fullConfig>
<deviceProtocol>SIP</deviceProtocol>
<sshUserId></sshUserId>
<devicePool uuid="{1b1b}">
 <revertPriority>0</revertPriority>
 <callManagerGroup>
  <name>Default</name>
  <members>
   <member priority="0">
    <callManager>
     <name>cucm-pub</name>
     <ports><ethernetPhonePort>2000</ethernetPhonePort><sipPort>5060</sipPort>
      <securedSipPort>5061</securedSipPort></ports>
     <processNodeName>cucm-pub.lab</processNodeName>
    </callManager>
   </member>
   <member priority="1">
    <callManager><ports><sipPort>5060</sipPort></ports><processNodeName>cucm-sub.lab</processNodeName>
    </callManager>
   </member>
  </members>
 </callManagerGroup>
</devicePool>
<TVS><members>
 <member priority="0"><port>2445</port><address>cucm-pub.lab</address></member>
 <member priority="1"><port>2445</port><address>cucm-sub.lab</address></member>
</members></TVS>
<loadInformation> sip88xx.14-2-1-0001-14 </loadInformation>
<ipAddressMode>2</ipAddressMode>
<capfAuthMode>4</capfAuthMode>
<capfList><capf><phonePort>3804</phonePort><processNodeName>cucm-pub.lab</processNodeName></capf></capfList>
<deviceSecurityMode>3</deviceSecurityMode>
<transportLayerProtocol>3</transportLayerProtocol>
<certHash></certHash>
<encrConfig>false</encrConfig>
<vendorConfig><disableSpeaker>false</disableSpeaker><webAccess a="1">0</webAccess></vendorConfig>
</device>
"""


def full_config() -> c.DeviceConfig:
    return c.DeviceConfig(
        device_name="SEP00112233AABB",
        capf_auth_mode=1,
        capf_servers=(c.Server(host="cucm-pub", port=3804), c.Server(host="cucm-sub", port=3805)),
        tvs_servers=(c.Server(host="cucm-pub", port=2445, priority=0),
                     c.Server(host="10.0.0.2", port=2446, priority=3)),
        load_information="sip88xx.14-2-1-0001-14",
        device_security_mode=3,
        transport_layer_protocol=3,
        ip_address_mode=0,
        cert_hash="0123456789abcdef0123456789abcdef",
        encr_config=False,
        extra={
            "deviceProtocol": "SIP",
            "userLocale": "<userLocale><name>English_United_States</name>"
                          "<langCode>en_US</langCode></userLocale>",
            "devicePool": c.device_pool_xml([c.CallManager(host="cucm-pub", sip_port=5060,
                                                           secured_sip_port=5061)]),
        },
    )


def children(xml: bytes) -> list[str]:
    return [el.tag for el in ET.fromstring(xml)]


# --------------------------------------------------------------------------- round trips
def test_round_trip_full_config() -> None:
    cfg = full_config()
    data = c.build(cfg)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<device>')
    data.decode("utf-8")
    back = c.parse(data)
    assert back == cfg
    assert hash(back) == hash(cfg)
    assert c.build(back) == data


def test_parse_cucm_like_config() -> None:
    cfg = c.parse(CUCM_LIKE)
    assert cfg.full_config is True and cfg.encr_config is False
    assert cfg.cert_hash == ""  # blank certHash is present but empty (spec §G.12 "blank hash")
    assert cfg.capf_auth_mode == 4
    assert cfg.capf_servers == (c.Server(host="cucm-pub.lab", port=3804, priority=0),)
    assert [(s.host, s.port, s.priority) for s in cfg.tvs_servers] == [
        ("cucm-pub.lab", 2445, 0), ("cucm-sub.lab", 2445, 1)]
    assert cfg.load_information == "sip88xx.14-2-1-0001-14"  # surrounding whitespace stripped
    assert cfg.device_security_mode == 3 and cfg.transport_layer_protocol == 3
    assert cfg.ip_address_mode == 2
    assert set(cfg.extra) == {"deviceProtocol", "sshUserId", "devicePool", "vendorConfig"}
    assert cfg.extra_text("deviceProtocol") == "SIP"
    assert cfg.extra_text("missing") is None
    assert 'a="1"' in cfg.extra["vendorConfig"]  # attributes of extra elements survive
    assert c.call_managers(cfg) == (
        c.CallManager(host="cucm-pub.lab", priority=0, sip_port=5060, secured_sip_port=5061),
        c.CallManager(host="cucm-sub.lab", priority=1, sip_port=5060),
    )
    assert c.parse(c.build(cfg)) == cfg


def test_device_name_with_spaces_round_trips() -> None:
    cfg = c.DeviceConfig(device_name="Lobby phone 2")
    assert c.parse(c.build(cfg)) == cfg


def test_defaults_omitted_but_security_flags_always_written() -> None:
    data = c.build(c.DeviceConfig())
    assert children(data) == ["fullConfig", "capfAuthMode", "encrConfig"]
    assert c.parse(data) == c.DeviceConfig()


def test_capf_priority_is_list_order() -> None:
    cfg = c.DeviceConfig(capf_servers=(c.Server(host="b", port=1, priority=9), c.Server(host="a", port=2)))
    assert [s.priority for s in cfg.capf_servers] == [0, 1]
    assert c.parse(c.build(cfg)) == cfg


def test_text_not_starting_with_the_element_is_text() -> None:
    cfg = c.DeviceConfig(extra={"x": "<z/>"})
    assert cfg.extra["x"] == "<x>&lt;z/&gt;</x>"
    assert cfg.extra_text("x") == "<z/>"


def test_extra_text_shorthand_is_canonicalised() -> None:
    cfg = c.DeviceConfig(extra={"sshUserId": "a & <b>", "x": "<x k='v'/>"})
    assert cfg.extra["sshUserId"] == "<sshUserId>a &amp; &lt;b&gt;</sshUserId>"
    assert cfg.extra_text("sshUserId") == "a & <b>"
    assert cfg.extra["x"] == '<x k="v" />'
    assert c.parse(c.build(cfg)) == cfg


def test_call_managers_round_trip_and_absent() -> None:
    cms = (c.CallManager(host="a", priority=0, sip_port=5060), c.CallManager(host="b", priority=1,
                                                                             secured_sip_port=5061))
    cfg = c.DeviceConfig(extra={"devicePool": c.device_pool_xml(cms)})
    assert c.call_managers(c.parse(c.build(cfg))) == cms
    assert c.call_managers(c.DeviceConfig()) == ()


# --------------------------------------------------------------------------- stub (§C.4)
def test_stub_of_contains_exactly_the_short_config() -> None:
    cfg = full_config()
    stub = c.stub_of(cfg, "d41d8cd98f00b204e9800998ecf8427e")
    assert stub.full_config is False and stub.is_stub
    assert stub.encr_config is True
    assert stub.cert_hash == "d41d8cd98f00b204e9800998ecf8427e"
    assert stub.capf_auth_mode == cfg.capf_auth_mode
    assert stub.capf_servers == cfg.capf_servers
    assert stub.load_information == cfg.load_information
    assert stub.ip_address_mode == cfg.ip_address_mode
    assert stub.tvs_servers == () and stub.extra == {} and stub.device_security_mode == 1
    data = c.build(stub)
    assert children(data) == ["fullConfig", "ipAddressMode", "loadInformation", "capfAuthMode", "capfList",
                              "certHash", "encrConfig"]
    assert c.parse(data) == stub


def test_stub_of_minimal_config_omits_absent_copies() -> None:
    stub = c.stub_of(c.DeviceConfig(capf_auth_mode=2), "ab" * 16)
    assert children(c.build(stub)) == ["fullConfig", "capfAuthMode", "certHash", "encrConfig"]


# --------------------------------------------------------------------------- hostile / malformed input
@pytest.mark.parametrize(("data", "needle"), [
    (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
     b"<device><x>&lol2;</x></device>", "entity"),
    (b'<?xml version="1.0"?><!DOCTYPE device [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
     b"<device><x>&xxe;</x></device>", "entity"),
    (b'<!DOCTYPE device SYSTEM "http://127.0.0.1/x.dtd"><device/>', "external DTD"),
    (b"<!DOCTYPE device><device/>", "DTD"),
    (b"<device><x>&undefined;</x></device>", "undefined entity"),
])
def test_hostile_xml_refused_naming_the_problem(data: bytes, needle: str) -> None:
    with pytest.raises(DecodeError, match=needle) as info:
        c.parse(data)
    assert info.value.fmt == "config"


def test_not_well_formed_xml_says_where_once() -> None:
    """expat's own ", line 1, column 11" suffix is dropped: the message gave the position twice."""
    with pytest.raises(DecodeError) as info:
        c.parse(b"<device><x>\xff</x></device>")
    assert str(info.value) == ("config: device: not well-formed XML at line 1 column 11: not well-formed "
                               "(invalid token)")


def test_oversized_refused_before_parsing() -> None:
    data = b"<device>" + b" " * c.CONFIG_LIMIT + b"</device>"
    with pytest.raises(SizeLimitError):
        c.parse(data)
    # garbage beyond the limit is a size error, not a parse error: nothing was parsed
    with pytest.raises(SizeLimitError):
        c.parse(b"\xff" * (c.CONFIG_LIMIT + 1))
    assert c.parse(b"<device/>", limit=9) == c.DeviceConfig()
    with pytest.raises(SizeLimitError):
        c.parse(b"<device/>", limit=8)


@pytest.mark.parametrize(("data", "path"), [
    (b"", "device"),
    (b"<device", "device"),
    (b"\xff\xfe<", "device"),
    (b"<config/>", "device"),
    (b"<device><fullConfig>yes</fullConfig></device>", "device.fullConfig"),
    (b"<device><encrConfig>1</encrConfig></device>", "device.encrConfig"),
    (b"<device><capfAuthMode>5</capfAuthMode></device>", "device.capfAuthMode"),
    (b"<device><capfAuthMode>-1</capfAuthMode></device>", "device.capfAuthMode"),
    (b"<device><capfAuthMode>\xd9\xa3</capfAuthMode></device>", "device.capfAuthMode"),
    (b"<device><deviceSecurityMode>0</deviceSecurityMode></device>", "device.deviceSecurityMode"),
    (b"<device><deviceSecurityMode>99999999999</deviceSecurityMode></device>", "device.deviceSecurityMode"),
    (b"<device><certHash>a</certHash><certHash>b</certHash></device>", "device.certHash"),
    (b"<device><foo/><foo/></device>", "device.foo"),
    (b"<device><certHash><b/></certHash></device>", "device.certHash"),
    (b"<device><capfList>" + b"<capf><phonePort>1</phonePort><processNodeName>a</processNodeName></capf>" * 6
     + b"</capfList></device>", "capfList"),
    (b"<device><capfList><capf><processNodeName>a</processNodeName></capf></capfList></device>",
     "capfList.capf[0].phonePort"),
    (b"<device><capfList><capf><phonePort>70000</phonePort><processNodeName>a</processNodeName></capf>"
     b"</capfList></device>", "capfList.capf[0].phonePort"),
    (b"<device><capfList><capf><phonePort>1</phonePort><processNodeName> </processNodeName></capf>"
     b"</capfList></device>", "capfList.capf[0].processNodeName"),
    (b'<device><TVS><members><member priority="x"><port>1</port><address>a</address></member>'
     b"</members></TVS></device>", "TVS.members.member[0]@priority"),
    (b"<device><TVS><members><member><port>1</port></member></members></TVS></device>",
     "TVS.members.member[0].address"),
    (b"<device>" + b"<a>" * 80 + b"</a>" * 80 + b"</device>", "device"),
    (b'<device xmlns="urn:x"/>', "device"),
    (b'<device><x:y xmlns:x="urn:x"/></device>', "device"),
])
def test_malformed_config_is_decode_error(data: bytes, path: str) -> None:
    with pytest.raises(DecodeError) as info:
        c.parse(data)
    assert info.value.fmt == "config"
    assert info.value.path == path


def test_parse_rejects_non_bytes() -> None:
    with pytest.raises(DecodeError):
        c.parse("<device/>")  # type: ignore[arg-type]


def test_undeclared_prefix_elsewhere_still_refused() -> None:
    with pytest.raises(DecodeError, match="unbound prefix"):
        c.parse(b"<device><x foo:bar='1'/></device>")


# --------------------------------------------------------------------------- unencodable values
@pytest.mark.parametrize("kwargs", [
    {"capf_auth_mode": 5},
    {"capf_auth_mode": True},
    {"device_security_mode": 0},
    {"device_security_mode": 4},
    {"transport_layer_protocol": 256},
    {"ip_address_mode": -1},
    {"full_config": 1},
    {"encr_config": "true"},
    {"cert_hash": " ab"},
    {"cert_hash": "a\x01b"},
    {"cert_hash": "a\rb"},
    {"load_information": 5},
    {"device_name": ""},
    {"capf_servers": tuple(c.Server(host=f"h{i}", port=3804) for i in range(6))},
    {"tvs_servers": ("host",)},
    {"extra": {"certHash": "x"}},
    {"extra": {"device": "x"}},
    {"extra": {"bad name": "x"}},
    {"extra": {"x": "<x><y></x>"}},
    {"extra": {"x": "<xy/>"}},
    {"extra": {"x": "<x>\ud800</x>"}},
    {"extra": {"x": "a\rb"}},
    {"extra": {"x": 5}},
    {"extra": [("x", "y")]},
])
def test_unencodable_values_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(EncodeError):
        c.DeviceConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [{"host": "", "port": 1}, {"host": "a", "port": 65536},
                                    {"host": "a", "port": 1, "priority": -1}, {"host": "a\nb", "port": 1}])
def test_bad_server_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(EncodeError):
        c.Server(**kwargs)  # type: ignore[arg-type]


def test_build_rejects_non_config() -> None:
    with pytest.raises(EncodeError):
        c.build("x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- names (§C.2)
def test_config_file_names() -> None:
    assert c.config_file_name("001122AABBCC") == "SEP001122AABBCC.cnf.xml"
    assert c.config_file_name("001122AABBCC", "sgn") == "SEP001122AABBCC.cnf.xml.sgn"
    assert c.config_file_name("001122AABBCC", "enc") == "SEP001122AABBCC.cnf.xml.enc.sgn"
    assert c.config_file_name("001122AABBCC", "sgn", prefix="ATA") == "ATA001122AABBCC.cnf.xml.sgn"
    assert c.device_name_for("001122AABBCC") == "SEP001122AABBCC"
    assert c.default_config_name() == "XmlDefault.cnf.xml" == c.DEFAULT_CONFIG_NAME
    assert c.default_config_name("sgn") == "XmlDefault.cnf.xml.sgn"


@pytest.mark.parametrize("mac", ["001122aabbcc", "001122AABBC", "001122AABBCCD", "00:11:22:AA:BB:CC",
                                 "GG1122AABBCC", ""])
def test_bad_mac_refused(mac: str) -> None:
    with pytest.raises(EncodeError):
        c.config_file_name(mac)
    with pytest.raises(DecodeError):
        c.parse_config_file_name(f"SEP{mac}.cnf.xml")


def test_bad_name_arguments_refused() -> None:
    with pytest.raises(EncodeError):
        c.config_file_name("001122AABBCC", "zip")  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        c.config_file_name("001122AABBCC", prefix="CIP")
    with pytest.raises(EncodeError):
        c.default_config_name("enc")  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "kind"), [("SEP001122AABBCC.cnf.xml", "plain"),
                                            ("SEP001122AABBCC.cnf.xml.sgn", "sgn"),
                                            ("SEP001122AABBCC.cnf.xml.enc.sgn", "enc"),
                                            ("ATA001122AABBCC.cnf.xml", "plain")])
def test_parse_config_file_name(name: str, kind: str) -> None:
    parsed = c.parse_config_file_name(name)
    assert parsed.mac == "001122AABBCC"
    assert parsed.kind == kind
    assert parsed.device_name == name[:15]
    assert str(parsed) == name


@pytest.mark.parametrize("name", ["SEP001122AABBCC.cnf", "SEP001122AABBCC.cnf.xml.gz", "XmlDefault.cnf.xml",
                                  "../SEP001122AABBCC.cnf.xml", "SEP001122AABBCC.cnf.xml.enc"])
def test_parse_config_file_name_refuses_others(name: str) -> None:
    with pytest.raises(DecodeError):
        c.parse_config_file_name(name)


def test_normalise_mac() -> None:
    assert c.normalise_mac("00:11:22:aa:bb:cc") == "001122AABBCC"
    assert c.normalise_mac("0011.22aa.bbcc") == "001122AABBCC"
    assert c.normalise_mac("00-11-22-AA-BB-CC") == "001122AABBCC"
    with pytest.raises(EncodeError):
        c.normalise_mac("00:11:22:aa:bb")


@pytest.mark.parametrize("typed", ["00:11:22:aa:bb", "00-11-22-33-44-5Z", "0011223344556"])
def test_normalise_mac_refusal_names_the_accepted_notations(typed: str) -> None:
    """A MAC typed by a user is refused with the notations accepted (any case, with separators), not
    with the upper-case rule of the config format nor under the format's name."""
    with pytest.raises(EncodeError) as err:
        c.normalise_mac(typed)
    assert str(err.value) == (f"mac: {typed!r} is not a MAC address: 12 hex digits, e.g. 001122334455, "
                              "00:11:22:33:44:55 or 0011.2233.4455")


# --------------------------------------------------------------------------- properties
_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=20) \
    .map(str.strip).filter(lambda s: "\ufffe" not in s and "\uffff" not in s)
_host = _text.filter(lambda s: bool(s) and not any(ch.isspace() for ch in s))
_server = st.builds(c.Server, host=_host, port=st.integers(0, 65535), priority=st.integers(0, 0xFFFF))
_configs = st.builds(
    c.DeviceConfig,
    device_name=st.none() | _text.filter(bool),
    full_config=st.booleans(),
    encr_config=st.booleans(),
    cert_hash=st.none() | _text,
    capf_auth_mode=st.integers(0, 4),
    capf_servers=st.lists(_server, max_size=5).map(tuple),
    tvs_servers=st.lists(_server, max_size=5).map(tuple),
    load_information=st.none() | _text,
    device_security_mode=st.integers(1, 3),
    transport_layer_protocol=st.none() | st.integers(0, 255),
    ip_address_mode=st.none() | st.integers(0, 255),
    extra=st.dictionaries(st.sampled_from(["sshUserId", "userLocale", "x-y.z", "_a"]),
                          st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                                  max_size=20).filter(lambda s: "\ufffe" not in s and "\uffff" not in s),
                          max_size=3),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_configs)
def test_property_round_trip(cfg: c.DeviceConfig) -> None:
    data = c.build(cfg)
    assert c.parse(data) == cfg
    assert c.build(c.parse(data)) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_property_random_bytes_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        c.parse(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_property_mutated_config_only_decode_error(data: st.DataObject) -> None:
    base = bytearray(CUCM_LIKE)
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(base) - 1))
        base[i] = data.draw(st.integers(0, 255))
    try:
        cfg = c.parse(bytes(base))
    except DecodeError:
        return
    assert c.parse(c.build(cfg)) == cfg
    _extras_are_canonical(cfg)


def _extras_are_canonical(cfg: c.DeviceConfig) -> None:
    """parse() sets extras without a second parse: they must be what DeviceConfig would make of them."""
    again = c.DeviceConfig(extra=dict(cfg.extra))
    assert again.extra == cfg.extra


def test_parsed_extras_canonical_with_namespaces_attributes_and_entities() -> None:
    xml = (b'<?xml version="1.0"?>\n<device xmlns:x="urn:x"><fullConfig>true</fullConfig>'
           b'<vendorConfig a="1 &amp; 2" b=\'&quot;q&quot;\'>\r\n <x:y z="&#13;">t&lt;&#x41;</x:y><!-- c -->'
           b'<![CDATA[<raw>]]></vendorConfig><phoneModel>CP-8861</phoneModel></device>')
    cfg = c.parse(xml)
    assert set(cfg.extra) == {"vendorConfig", "phoneModel"}
    _extras_are_canonical(cfg)
    with pytest.raises(DecodeError, match="typed field"):
        c.parse(b"<device><device>x</device></device>")


def test_stub_for_certificate_uses_md5_of_the_phone_cert() -> None:
    import datetime as dt
    import hashlib

    from phoneemu.crypto import certs
    from phoneemu.crypto.keys import KeySpec, generate_key

    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="test-config-phone")
    cert = certs.issue_certificate(
        certs.CertRequest(subject="CN=SEP001122AABBCC", public_key=key.public_key(), serial=1,
                          not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                          not_after=dt.datetime(2044, 1, 1, tzinfo=dt.UTC)), issuer_key=key)
    stub = c.stub_for_certificate(full_config(), cert)
    assert stub.cert_hash == hashlib.md5(certs.cert_der(cert)).hexdigest()
    assert stub == c.stub_of(full_config(), stub.cert_hash)


def test_static_file_elements_round_trip_and_name_the_files() -> None:
    """§C.6 row 6: <networkLocale> → the locale's g3-tones.xml; <dialTemplate> names its file; a value
    that is not a plain file name is never requested."""
    cfg = c.DeviceConfig(network_locale="United_States", dial_template="AppDialRules.xml")
    assert c.parse(c.build(cfg)) == cfg
    assert cfg.static_files == ("g3-tones.xml", "AppDialRules.xml")
    assert c.DeviceConfig().static_files == ()
    assert c.DeviceConfig(dial_template="../etc/passwd").static_files == ()
    assert c.DeviceConfig(dial_template=".hidden").static_files == ()
