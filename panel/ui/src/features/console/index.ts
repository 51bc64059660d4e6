export { ConsoleProvider } from "./ConsoleProvider";
export { useConsole } from "./useConsole";
