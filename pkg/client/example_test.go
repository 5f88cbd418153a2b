package client_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/example/accounts/pkg/client"
)

// Logging in, reading yourself and a page of users (the README's example;
// compiled, not run).
func ExampleClientWithResponses() {
	ctx := context.Background()
	email, password := "ada@example.com", "correct horse battery staple"
	c, err := client.NewClientWithResponses("http://127.0.0.1:3000")
	if err != nil {
		panic(err)
	}
	login, err := c.AuthLoginWithResponse(ctx, client.LoginRequest{Login: &email, Password: password})
	if err != nil || login.JSON200 == nil {
		return // login.JSON400, JSON429... hold the error envelope
	}
	auth := func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Token "+login.JSON200.Token)
		return nil
	}
	me, err := c.UsersMeRetrieveWithResponse(ctx, nil, auth)
	if err != nil || me.JSON200 == nil {
		return
	}
	fmt.Println(*me.JSON200.Email, me.Headers200.ETag)
	page, err := c.UsersListWithResponse(ctx, &client.UsersListParams{O: &[]string{"-date_joined"}}, auth)
	if err != nil || page.JSON200 == nil {
		return
	}
	fmt.Println(len(*page.JSON200), "of", page.Headers200.XResultCount)
}
