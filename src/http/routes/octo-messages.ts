/**
 * What octo-server's clients are told when something goes wrong (docs/octo-compat.md §2): every
 * Chinese message of the compat routes, in one place. The clients show `msg` on an HTTP 400, sign
 * out on any 401, and show "未知错误" for anything else; latchkey's `code` is kept beside it.
 */
import type { ErrorCode } from '../../core/errors.ts';

/** The HTTP status each error is answered with on a compat route. 401 stays only for a dead token. */
export const OCTO_STATUS: Readonly<Record<ErrorCode, number>> = {
  invalid_request: 400,
  unauthorized: 401,
  invalid_credentials: 400,
  forbidden: 400,
  account_disabled: 400,
  not_found: 400,
  conflict: 400,
  expired: 400,
  session_limit: 400,
  step_up_required: 400,
  payload_too_large: 400,
  unsupported_media_type: 400,
  // octo-server itself answers a rate limit with 429 and this message; the clients show "未知错误".
  rate_limited: 429,
  internal_error: 500,
  upstream_unavailable: 503,
};

export const OCTO_MESSAGES: Readonly<Record<ErrorCode, string>> = {
  invalid_request: '请求数据格式有误！',
  unauthorized: '请先登录！',
  invalid_credentials: '用户名或密码错误',
  forbidden: '没有权限！',
  account_disabled: '该用户已被禁用',
  not_found: '未查询到该数据',
  conflict: '该用户已存在',
  expired: '已过期，请重新操作',
  session_limit: '登录设备数量已达上限',
  step_up_required: '请先验证身份',
  payload_too_large: '请求数据过大！',
  unsupported_media_type: '请求数据格式有误！',
  rate_limited: '请求过于频繁，请稍后再试',
  internal_error: '服务器内部错误',
  upstream_unavailable: '服务暂时不可用，请稍后再试',
};

/** Messages of one error on one route, where octo-server says something more precise. */
export const OCTO_ROUTE_MESSAGES = {
  passwordPolicy: '密码不符合要求：至少8位，且不能是常见密码或用户名',
  usernameTaken: '该用户名已存在',
  emailTaken: '该邮箱已被注册',
  phoneTaken: '该手机号已被注册',
  deviceNotFound: '未查询到该设备',
  wrongCode: '验证码错误',
  codeGone: '验证码已失效，请重新获取',
  registerOff: '注册通道暂不开放',
  oldPasswordWrong: '旧密码错误',
} as const;
