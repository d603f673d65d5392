# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The nginx role's Lua modules run in LuaJIT (the machine's libluajit-5.1, through ctypes), against a fake ``ngx``:
shared dicts as Lua tables, ``ngx.var`` as a table the test fills, and ``ngx.print`` kept in ``ngx_test.out``.

It checks what ``nginx -t`` cannot (the Lua of init_by_lua is only compiled when nginx really starts): that a
module compiles, and what it counts and exports. ``available()`` is false where libluajit is not installed; the
tests that need it skip there."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util

LIBRARIES = ("libluajit-5.1.so.2", "libluajit-5.1.so")

# The fake ngx: only what ragops.live and ragops.traffic use.
FAKE_NGX = r"""
ngx_test = { out = nil, logs = {}, method = "GET" }
local function new_dict()
  local data = {}
  local dict = { data = data }
  function dict:get(key) return data[key] end
  function dict:set(key, value) data[key] = value return true end
  function dict:add(key, value)
    if data[key] ~= nil then return false, "exists" end
    data[key] = value
    return true
  end
  function dict:incr(key, value, init)
    local current = data[key]
    if current == nil then
      if init == nil then return nil, "not found" end
      current = init
    end
    data[key] = current + value
    return data[key]
  end
  function dict:delete(key) data[key] = nil end
  return dict
end
local function log(level, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring(select(i, ...)) end
  ngx_test.logs[#ngx_test.logs + 1] = table.concat(parts)
end
ngx = {
  shared = { ragops = new_dict(), ragops_traffic = new_dict() },
  var = {}, header = {}, ctx = {}, status = 200, null = setmetatable({}, { __tostring = function() return "null" end }),
  HTTP_OK = 200, HTTP_NOT_ALLOWED = 405, ERROR = -1, ERR = 4, WARN = 5,
  req = { get_method = function() return ngx_test.method end },
  log = log,
  print = function(out) ngx_test.out = type(out) == "table" and table.concat(out) or tostring(out) end,
  say = function(out) ngx_test.out = tostring(out) .. "\n" end,
  exit = function(code) return code end,
  now = function() return 1000 end,
  worker = { pid = function() return 1 end, id = function() return 0 end },
}
package.preload["ngx.balancer"] = function() return {} end
"""


def _library():
    names = list(LIBRARIES)
    found = ctypes.util.find_library("luajit-5.1")
    if found:
        names.append(found)
    for name in names:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


_LIB = _library()


def available():
    return _LIB is not None


class LuaError(Exception):
    pass


class LuaState(object):
    """One Lua state with the fake ngx loaded. ``run(code)`` runs a chunk and returns its first result as text (or
    None); a compile or run error raises LuaError with Lua's message."""

    def __init__(self):
        lib = _LIB
        lib.luaL_newstate.restype = ctypes.c_void_p
        lib.luaL_openlibs.argtypes = [ctypes.c_void_p]
        lib.luaL_loadbuffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p]
        lib.lua_pcall.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.lua_tolstring.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
        lib.lua_tolstring.restype = ctypes.c_void_p
        lib.lua_settop.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.lua_close.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.state = lib.luaL_newstate()
        lib.luaL_openlibs(self.state)
        self.run(FAKE_NGX, "fake_ngx")

    def _top_text(self):
        size = ctypes.c_size_t()
        pointer = self.lib.lua_tolstring(self.state, -1, ctypes.byref(size))
        if not pointer:
            return None
        return ctypes.string_at(pointer, size.value).decode("utf-8", "replace")

    def compile_error(self, code, name="chunk"):
        """Lua's message when ``code`` does not compile, else None (nothing runs)."""
        data = code.encode("utf-8")
        status = self.lib.luaL_loadbuffer(self.state, data, len(data), name.encode("utf-8"))
        message = self._top_text() if status else None
        self.lib.lua_settop(self.state, 0)
        return message

    def run(self, code, name="chunk"):
        data = code.encode("utf-8")
        try:
            if self.lib.luaL_loadbuffer(self.state, data, len(data), name.encode("utf-8")):
                raise LuaError(self._top_text())
            if self.lib.lua_pcall(self.state, 0, 1, 0):
                raise LuaError(self._top_text())
            return self._top_text()
        finally:
            self.lib.lua_settop(self.state, 0)

    def close(self):
        if self.state:
            self.lib.lua_close(self.state)
            self.state = None


def lua_string(text):
    """A Lua string literal of ``text``."""
    return '"%s"' % "".join(chr(b) if chr(b).isalnum() or chr(b) in " .:,-_/" else "\\%d" % b
                            for b in bytearray(text.encode("utf-8")))
