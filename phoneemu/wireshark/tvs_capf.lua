-- phoneemu: Wireshark/tshark dissectors for the Cisco TVS and CAPF protocols (spec §E.2-E.4, §F.2-F.5).
--
-- TVS (TCP 2445, inside TLS): 10-byte header 0x57, version, type, reserved, session id (u32),
-- body length (u16), then elements (tag u8, length u16, value).
-- CAPF (TCP 3804, inside TLS): 8-byte header 0x55, command, session id (u32), body length (u16),
-- then elements (tag u8, length u16, value).
--
-- Both run on the decrypted TLS application data: give Wireshark the key log (Preferences ->
-- Protocols -> TLS -> (Pre)-Master-Secret log filename, or tshark -o tls.keylog_file:FILE). TCP
-- ports 2445 and 3804 are given to TLS (Wireshark's own table gives 3804 to HiQnet) and TLS ports
-- 2445 and 3804 to TVS and CAPF; both are heuristics on TLS too, so ephemeral lab ports work once
-- the port is decoded as TLS (Decode As... / tshark -d tcp.port==N,tls). A message split over
-- several TLS records is reassembled. On an ephemeral port the heuristic has to recognise the start
-- of a message in one record: a message whose first record is shorter than its header (10 bytes
-- TVS, 8 CAPF) is not matched there (on 2445/3804 it is reassembled). Malformed input is marked as
-- an expert error, never raised; a header that is not TVS's or CAPF's (Decode As on another stream)
-- stops the decoding of that data.
--
-- SIP over TLS on a port Wireshark does not take for SIPS (lab registrars listen on ephemeral ports,
-- Wireshark knows 5061 only) is handed to the SIP dissector by a heuristic on the decrypted data (a
-- SIP request or status line), so the REGISTERs, INVITEs, their SDP and the RTP/SRTP it sets up show.
--
-- Loaded twice (installed as a plugin and given with -X lua_script:), the second copy does nothing:
-- Wireshark refuses two protocols of one name, and would show that as a Lua error at start.
--
-- Use:  tshark -X lua_script:tvs_capf.lua -o tls.keylog_file:run.keys -r run.pcap -Y tvs
--       or copy this file to ~/.local/lib/wireshark/plugins/ (phoneemu wireshark --install).

if package.loaded["phoneemu_tvs_capf"] then
  return  -- the other copy registered the protocols already
end
package.loaded["phoneemu_tvs_capf"] = true

local ROLE = { [0] = "SAST", [1] = "CCM", [2] = "CCM+TFTP", [3] = "TFTP", [4] = "CAPF", [5] = "SRST",
               [7] = "APP-SERVER", [21] = "TVS" }

-- The element fields both protocols share (tag u8, length u16, value), under their own prefix.
local function with_element_fields(prefix, tags, fields)
  fields.element = ProtoField.bytes(prefix .. ".element", "Element")
  fields.tag = ProtoField.uint8(prefix .. ".tag", "Tag", base.DEC, tags)
  fields.elen = ProtoField.uint16(prefix .. ".element_length", "Length")
  fields.value = ProtoField.bytes(prefix .. ".value", "Value")
  return fields
end

-- ------------------------------------------------------------------------------------------- TVS
local tvs = Proto("tvs", "Cisco Trust Verification Service")
local TVS_TYPE = { [1] = "VERIFY_REQUEST", [2] = "VERIFY_RESPONSE", [3] = "QUERY_REQUEST",
                   [4] = "QUERY_RESPONSE" }
local TVS_TAG = { [1] = "DEVICE_NAME", [2] = "CERTIFICATE", [3] = "SUBJECT", [4] = "ISSUER",
                  [5] = "SERIAL", [7] = "STATUS", [8] = "ROLES", [9] = "TTL" }
local TVS_STATUS = { [0] = "valid", [1] = "invalid" }

local tf = with_element_fields("tvs", TVS_TAG, {
  discriminator = ProtoField.uint8("tvs.discriminator", "Protocol discriminator", base.HEX),
  version = ProtoField.uint8("tvs.version", "Version"),
  type = ProtoField.uint8("tvs.type", "Message type", base.DEC, TVS_TYPE),
  reserved = ProtoField.uint8("tvs.reserved", "Reserved", base.HEX),
  session = ProtoField.uint32("tvs.session_id", "Session id"),
  length = ProtoField.uint16("tvs.length", "Body length"),
  device_name = ProtoField.string("tvs.device_name", "Device name"),
  certificate = ProtoField.bytes("tvs.certificate", "Certificate (DER)"),
  subject = ProtoField.string("tvs.subject", "Subject"),
  issuer = ProtoField.string("tvs.issuer", "Issuer"),
  serial = ProtoField.bytes("tvs.serial", "Serial number"),
  status = ProtoField.uint8("tvs.status", "Status", base.DEC, TVS_STATUS),
  role = ProtoField.uint8("tvs.role", "Role", base.DEC, ROLE),
  ttl = ProtoField.uint32("tvs.ttl", "TTL (s)"),
})
tvs.fields = tf
local tvs_bad = ProtoExpert.new("tvs.malformed", "Malformed TVS message", expert.group.MALFORMED,
                                expert.severity.ERROR)
tvs.experts = { tvs_bad }

local function cstring(tvb)
  local s = tvb:raw()
  return (s:gsub("\0+$", ""))
end

local function tvs_value(tree, tag, v, summary)
  local n = v:len()
  if tag == 1 and n >= 1 then
    local name = n > 1 and v(1):string() or ""
    tree:add(tf.device_name, v, name)
    summary[#summary + 1] = name
  elseif tag == 2 then
    tree:add(tf.certificate, v)
  elseif tag == 3 and n > 0 then
    tree:add(tf.subject, v, cstring(v))
  elseif tag == 4 and n > 0 then
    tree:add(tf.issuer, v, cstring(v))
  elseif tag == 5 then
    tree:add(tf.serial, v)
  elseif tag == 7 and n == 1 then
    tree:add(tf.status, v)
    summary[#summary + 1] = "status " .. (TVS_STATUS[v:uint()] or tostring(v:uint()))
  elseif tag == 8 then
    local names = {}
    for i = 0, n - 1 do
      tree:add(tf.role, v(i, 1))
      names[#names + 1] = ROLE[v(i, 1):uint()] or tostring(v(i, 1):uint())
    end
    summary[#summary + 1] = "roles " .. table.concat(names, ",")
  elseif tag == 9 and n == 4 then
    tree:add(tf.ttl, v)
  end
end

-- The Info column: every message of the packet, in one record or several. After the first, the text
-- beyond the fence (TLS's "Application Data" of the next record) is replaced, what is before it stays.
local function show(pinfo, label, text)
  pinfo.cols.protocol = label
  local info = label .. " " .. text
  if tostring(pinfo.cols.info):find(label .. " ", 1, true) then
    pinfo.cols.info:set(", " .. info)
  else
    pinfo.cols.info:set(info)
  end
  pinfo.cols.info:fence()
end

-- Elements of a body: tag u8, length u16, value. Returns false (and marks the tree) when malformed.
-- A value whose length the protocol fixes (d.sizes[tag] = { min, max }) is an expert error when it
-- has another, and stays shown as a value only.
local function elements(tvb, tree, d, summary)
  local pos, len = 0, tvb:len()
  while pos < len do
    if len - pos < 3 then
      tree:add_proto_expert_info(d.bad, "element header truncated at body offset " .. pos)
      return false
    end
    local tag, n = tvb(pos, 1):uint(), tvb(pos + 1, 2):uint()
    if len - pos - 3 < n then
      tree:add_proto_expert_info(d.bad, "element length " .. n .. " overruns the body at offset " .. pos)
      return false
    end
    local name = d.tags[tag] or ("tag " .. tag)
    local el = tree:add(d.fields.element, tvb(pos, 3 + n))
    el:set_text(name .. " (" .. n .. " bytes)")
    el:add(d.fields.tag, tvb(pos, 1))
    el:add(d.fields.elen, tvb(pos + 1, 2))
    if n > 0 then
      el:add(d.fields.value, tvb(pos + 3, n))
    end
    local size = d.sizes[tag]
    if size ~= nil and (n < size[1] or (size[2] ~= nil and n > size[2])) then
      local want = size[2] == nil and ("at least " .. size[1]) or tostring(size[1])
      el:add_proto_expert_info(d.bad, name .. " of " .. n .. (n == 1 and " byte" or " bytes")
                               .. " at body offset " .. pos .. " (" .. want .. " expected)")
    elseif n > 0 then
      d.on_value(el, tag, tvb(pos + 3, n), summary)
    end
    pos = pos + 3 + n
  end
  return true
end

-- One framed message at the start of tvb (d.header_len bytes, body length at d.length_at): returns
-- the bytes used, a negative "need more" count for TCP/TLS reassembly, or nil and what is wrong with
-- the header (d.header_problem, told the bytes there are).
local function framed(tvb, d, body_fn)
  local len = tvb:len()
  local problem = d.header_problem(tvb(0, math.min(len, d.header_len)):tvb())
  if problem ~= nil then
    return nil, problem
  end
  if len < d.header_len then
    -- not "header_len - len more": TLS would reassemble exactly those and could not extend the
    -- message again from the same record (a header split 3+7 over records was lost)
    return -DESEGMENT_ONE_MORE_SEGMENT
  end
  local total = d.header_len + tvb(d.length_at, 2):uint()
  if len < total then
    return -(total - len)
  end
  body_fn(tvb(0, total))
  return total
end

local function dissect_all(tvb, pinfo, tree, d, one)
  local offset = 0
  while offset < tvb:len() do
    local used, problem = framed(tvb(offset):tvb(), d, function(m) one(m, pinfo, tree) end)
    if used == nil then  -- not this protocol (Decode As on another stream): marked, the rest left alone
      local t = tree:add(d.proto, tvb(offset))
      t:add_proto_expert_info(d.bad, problem .. " at offset " .. offset .. ": not a " .. d.label
                              .. " message, the rest is not decoded")
      show(pinfo, d.label, "malformed header: " .. problem)
      return tvb:len()
    end
    if used < 0 then
      pinfo.desegment_offset = offset
      pinfo.desegment_len = -used
      return tvb:len()
    end
    offset = offset + used
  end
  return offset
end

-- A framed protocol: header fields, a type byte, a session id, a body of elements. Builds the
-- dissector (all messages of a segment, reassembly) and the TLS heuristic from one description.
local function framed_protocol(d)
  local function one(m, pinfo, tree)
    local t = tree:add(d.proto, m)
    for _, h in ipairs(d.header) do
      t:add(h[1], m(h[2], h[3]))
    end
    local summary = {}
    if m:len() > d.header_len then
      elements(m(d.header_len):tvb(), t, d, summary)
    end
    local kind = m(d.kind_at, 1):uint()
    local text = (d.kinds[kind] or (d.kind_word .. " " .. kind)) .. " #" .. m(d.session_at, 4):uint()
      .. (#summary > 0 and (" " .. table.concat(summary, " ")) or "")
    t:append_text(": " .. text)
    show(pinfo, d.label, text)
  end

  function d.proto.dissector(tvb, pinfo, tree)
    return dissect_all(tvb, pinfo, tree, d, one)
  end

  local function heuristic(tvb, pinfo, tree)
    if tvb:len() < d.header_len or not d.looks_like(tvb) then
      return false
    end
    d.proto.dissector(tvb, pinfo, tree)
    return true
  end
  d.proto:register_heuristic("tls", heuristic)
end

framed_protocol {
  proto = tvs, label = "TVS", fields = tf, tags = TVS_TAG, kinds = TVS_TYPE, kind_word = "type",
  on_value = tvs_value, bad = tvs_bad, header_len = 10, length_at = 8, kind_at = 2, session_at = 4,
  header = { { tf.discriminator, 0, 1 }, { tf.version, 1, 1 }, { tf.type, 2, 1 }, { tf.reserved, 3, 1 },
             { tf.session, 4, 4 }, { tf.length, 8, 2 } },
  looks_like = function(tvb)
    local t = tvb(2, 1):uint()
    return tvb(0, 1):uint() == 0x57 and tvb(1, 1):uint() == 1 and t >= 1 and t <= 4
  end,
  header_problem = function(h)  -- the bytes of the header there are
    if h:len() >= 1 and h(0, 1):uint() ~= 0x57 then
      return string.format("protocol discriminator 0x%02x (0x57 expected)", h(0, 1):uint())
    end
    if h:len() >= 2 and h(1, 1):uint() ~= 1 then
      return "version " .. h(1, 1):uint() .. " (1 expected)"
    end
  end,
  sizes = { [7] = { 1, 1 }, [9] = { 4, 4 } },  -- STATUS, TTL
}

-- ------------------------------------------------------------------------------------------- CAPF
local capf = Proto("capf", "Cisco Certificate Authority Proxy Function")
local CAPF_CMD = {
  [1] = "AUTH_REQUEST", [2] = "AUTH_RESPONSE", [3] = "KEY_GENERATE_REQUEST", [4] = "KEY_GENERATE_RESPONSE",
  [5] = "ENCRYPT_RESPONSE", [6] = "ENCRYPT_REQUEST", [7] = "DECRYPT_REQUEST", [8] = "DECRYPT_RESPONSE",
  [9] = "STORE_CERTIFICATE_REQUEST", [10] = "STORE_CERTIFICATE_RESPONSE",
  [11] = "FETCH_CERTIFICATE_REQUEST", [12] = "FETCH_CERTIFICATE_RESPONSE",
  [13] = "DELETE_CERTIFICATE_REQUEST", [14] = "DELETE_CERTIFICATE_RESPONSE", [15] = "END_SESSION",
  [16] = "RETRY_LATER", [17] = "REQUEST_IN_PROGRESS", [18] = "STATUS_REQUEST", [19] = "STATUS_RESPONSE",
  [20] = "ABORT_REQUEST", [21] = "ABORT_RESPONSE", [22] = "SIGN_CERTIFICATE_REQUEST",
  [23] = "SIGN_CERTIFICATE_RESPONSE",
}
local CAPF_TAG = {
  [1] = "REASON", [2] = "REASON_INFO", [3] = "CERTIFICATE_TYPE", [4] = "CERTIFICATE", [5] = "CERTIFICATE_ID",
  [6] = "SIGNED_DATA", [7] = "VERSION", [8] = "AUTH_TYPE", [9] = "PUBLIC_KEY", [10] = "KEY_SIZE",
  [11] = "PASSWORD", [12] = "RETRY_DELAY", [13] = "DEVICE_NAME", [16] = "SUDI_DATA", [17] = "KEY_TYPE",
  [18] = "CURVE", [19] = "DIGEST_TYPE", [20] = "SHA2_SIGNED_DATA",
}
local CAPF_REASON = { [0] = "no action", [1] = "update / success", [7] = "invalid element / failure",
                      [9] = "unknown device" }
local CAPF_CERT_TYPE = { [1] = "LSC", [2] = "MIC" }
local CAPF_AUTH = { [0] = "none", [1] = "password", [2] = "no password", [3] = "LSC", [4] = "MIC" }
local CAPF_KEY_TYPE = { [0] = "RSA", [1] = "EC" }
local CAPF_CURVE = { [0] = "secp256r1", [1] = "secp384r1", [2] = "secp521r1" }

local cf = with_element_fields("capf", CAPF_TAG, {
  protocol_id = ProtoField.uint8("capf.protocol_id", "Protocol id", base.HEX),
  command = ProtoField.uint8("capf.command", "Command", base.DEC, CAPF_CMD),
  session = ProtoField.uint32("capf.session_id", "Session id"),
  length = ProtoField.uint16("capf.length", "Body length"),
  reason = ProtoField.uint8("capf.reason", "Reason", base.DEC, CAPF_REASON),
  reason_info = ProtoField.string("capf.reason_info", "Reason info"),
  cert_type = ProtoField.uint8("capf.certificate_type", "Certificate type", base.DEC, CAPF_CERT_TYPE),
  certificate = ProtoField.bytes("capf.certificate", "Certificate (DER)"),
  version = ProtoField.uint8("capf.version", "CAPF version"),
  auth_type = ProtoField.uint8("capf.auth_type", "Authentication type", base.DEC, CAPF_AUTH),
  public_key = ProtoField.bytes("capf.public_key", "Public key (SubjectPublicKeyInfo)"),
  key_size = ProtoField.uint16("capf.key_size", "Key size (bits)"),
  password = ProtoField.string("capf.password", "Password"),
  device_name = ProtoField.string("capf.device_name", "Device name"),
  key_type = ProtoField.uint8("capf.key_type", "Key type", base.DEC, CAPF_KEY_TYPE),
  curve = ProtoField.uint8("capf.curve", "Curve", base.DEC, CAPF_CURVE),
})
capf.fields = cf
local capf_bad = ProtoExpert.new("capf.malformed", "Malformed CAPF message", expert.group.MALFORMED,
                                 expert.severity.ERROR)
capf.experts = { capf_bad }

local function capf_value(tree, tag, v, summary)
  local n = v:len()
  if tag == 1 and n == 1 then
    tree:add(cf.reason, v)
    summary[#summary + 1] = "reason " .. (CAPF_REASON[v:uint()] or tostring(v:uint()))
  elseif tag == 2 then
    tree:add(cf.reason_info, v, cstring(v))
  elseif tag == 3 and n == 1 then
    tree:add(cf.cert_type, v)
  elseif tag == 4 then
    if n > 5 then
      tree:add(cf.certificate, v(5))  -- wrapper: 0x01, u16 len+2, 0x00, cert type, DER (spec §F.4)
    end
  elseif tag == 7 and n == 1 then
    tree:add(cf.version, v)
  elseif tag == 8 and n == 1 then
    tree:add(cf.auth_type, v)
    summary[#summary + 1] = "auth " .. (CAPF_AUTH[v:uint()] or tostring(v:uint()))
  elseif tag == 9 then
    tree:add(cf.public_key, v)
  elseif tag == 10 and n == 2 then
    tree:add(cf.key_size, v)
  elseif tag == 11 then
    tree:add(cf.password, v, cstring(v))
  elseif tag == 13 and n > 0 then
    local name = cstring(v)
    tree:add(cf.device_name, v, name)
    summary[#summary + 1] = name
  elseif tag == 17 and n == 1 then
    tree:add(cf.key_type, v)
  elseif tag == 18 and n == 1 then
    tree:add(cf.curve, v)
  end
end

framed_protocol {
  proto = capf, label = "CAPF", fields = cf, tags = CAPF_TAG, kinds = CAPF_CMD, kind_word = "command",
  on_value = capf_value, bad = capf_bad, header_len = 8, length_at = 6, kind_at = 1, session_at = 2,
  header = { { cf.protocol_id, 0, 1 }, { cf.command, 1, 1 }, { cf.session, 2, 4 }, { cf.length, 6, 2 } },
  looks_like = function(tvb)
    local c = tvb(1, 1):uint()
    return tvb(0, 1):uint() == 0x55 and c >= 1 and c <= 23
  end,
  header_problem = function(h)
    if h:len() >= 1 and h(0, 1):uint() ~= 0x55 then
      return string.format("protocol id 0x%02x (0x55 expected)", h(0, 1):uint())
    end
  end,
  -- REASON, CERTIFICATE_TYPE, CERTIFICATE (its 5-byte wrapper), VERSION, AUTH_TYPE, KEY_SIZE, KEY_TYPE, CURVE
  sizes = { [1] = { 1, 1 }, [3] = { 1, 1 }, [4] = { 5 }, [7] = { 1, 1 }, [8] = { 1, 1 }, [10] = { 2, 2 },
            [17] = { 1, 1 }, [18] = { 1, 1 } },
}

-- ------------------------------------------------------------------------------------ registration
local tls_port = DissectorTable.get("tls.port")
tls_port:add(2445, tvs)
tls_port:add(3804, capf)
local tcp_port = DissectorTable.get("tcp.port")
local tls_dissector = Dissector.get("tls")
tcp_port:add(2445, tls_dissector)
tcp_port:add(3804, tls_dissector)  -- Wireshark gives TCP 3804 to HiQnet: TLS would never run there
-- plain TCP only through Decode As (e.g. tshark -d tcp.port==N,tvs): TVS and CAPF are always in TLS
tcp_port:add_for_decode_as(tvs)
tcp_port:add_for_decode_as(capf)

-- ------------------------------------------------------------------------------------ SIP over TLS
-- A request line (METHOD SP Request-URI SP SIP/2.0) or a status line (SIP/2.0 SP 3 digits) starts
-- every SIP message (RFC 3261 §7); the rest is the SIP dissector's, reassembly included.
local sip_tcp = Dissector.get("sip.tcp")
local sip_tls = Proto("phoneemu_sip_tls", "SIP over TLS on any port (phoneemu heuristic)")

local function sip_heuristic(tvb, pinfo, tree)
  local line = tvb:raw(0, math.min(tvb:len(), 256)):match("^[^\r\n]*\r\n")
  if line == nil or not (line:match("^%u+ %S+ SIP/2%.0\r\n$") or line:match("^SIP/2%.0 %d%d%d ")) then
    return false
  end
  sip_tcp:call(tvb, pinfo, tree)
  return true
end
sip_tls:register_heuristic("tls", sip_heuristic)
