import { useRouteError } from "react-router";
import { ErrorNotice } from "../components/Feedback";

/** A page that failed while rendering (a defect): say so instead of a blank screen. */
export function RouteError() {
  const error = useRouteError();
  return (
    <main id="main" style={{ padding: "24px", maxWidth: "720px", margin: "0 auto" }}>
      <ErrorNotice
        title="This page failed"
        error={error}
        onRetry={() => {
          window.location.reload();
        }}
      />
    </main>
  );
}
