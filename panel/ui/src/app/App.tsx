import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useState } from "react";
import { RouterProvider } from "react-router";
import { ApiError, isUnauthenticated } from "../api/errors";
import { ConsoleProvider } from "../features/console";
import { goToLogin } from "../features/account";
import { router } from "./routes";

function makeQueryClient(): QueryClient {
  // A session that ended (expired, revoked, logged out elsewhere) sends the user to the login
  // page, which brings them back to the page they were on.
  const onError = (error: unknown) => {
    if (isUnauthenticated(error)) goToLogin();
  };
  return new QueryClient({
    queryCache: new QueryCache({ onError }),
    mutationCache: new MutationCache({ onError }),
    defaultOptions: {
      queries: {
        // The panel's refusals (4xx) will not change by asking again; failures may.
        retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 2,
        refetchOnWindowFocus: true,
      },
    },
  });
}

export function App() {
  const [queryClient] = useState(makeQueryClient);
  return (
    <QueryClientProvider client={queryClient}>
      <ConsoleProvider>
        <RouterProvider router={router} />
      </ConsoleProvider>
    </QueryClientProvider>
  );
}
