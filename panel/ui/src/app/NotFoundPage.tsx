import { Link } from "react-router";
import { EmptyState } from "../components/Feedback";
import { paths } from "./paths";
import { usePageTitle } from "./usePageTitle";

export function NotFoundPage() {
  usePageTitle("Not found");
  return (
    <EmptyState title="There is no page at this address">
      It may have moved, or the link is mistyped. <Link to={paths.servers()}>Your servers</Link>
    </EmptyState>
  );
}
