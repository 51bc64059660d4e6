export { accountKey, useAccount, useLogout } from "./api";
export { goToLogin, loginUrl } from "./login";
